"""How many of transformers' architectures `params` counts exactly (not run in CI; takes minutes).

    HF_HUB_OFFLINE=1 python tools/breadth.py [--timeout 60] [--only qwen3_5,gemma3] [--json out.json]

For every model_type in transformers' CONFIG_MAPPING whose config class has a causal-LM or an
image-text-to-text model class, the default config (`CONFIG_MAPPING[mt]().to_dict()`) is counted
twice: by inspector's library API (a native family, or the transformers fallback), and by
transformers itself, `sum(p.numel() for p in model.parameters())` of the model built on the meta
device (the whole vision-language model where the image-text-to-text class exists, else the causal
LM). Each side runs under a per-architecture time limit (SIGALRM). Prints one row per model_type
(match, mismatch, refused by us, not buildable by transformers, timeout) and "N of M exact", where
M counts the architectures transformers itself builds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def _timed(fn, seconds: int):
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    start = time.perf_counter()
    try:
        return fn(), time.perf_counter() - start
    finally:
        signal.alarm(0)


def reference(torch, transformers, config) -> tuple[int, str]:
    """transformers' own total for the whole model, and the class it built."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING,
    )

    mapping = (MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING if type(config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING
               else MODEL_FOR_CAUSAL_LM_MAPPING)
    with torch.device("meta"):
        model = mapping[type(config)]._from_config(config)
    return sum(p.numel() for p in model.parameters()), type(model).__name__


def ours(cfg: dict, model_type: str) -> tuple[int, str]:
    from inspector.inventory.accounting import account
    from inspector.inventory.load import is_native
    from inspector.spec.model import from_hf_config

    if is_native(cfg):
        return account(from_hf_config(cfg, model_type, model_type)).totals.total_params, "native"
    from inspector.inventory.transformers_meta import meta_account

    return meta_account(cfg, model_type, model_type).totals.total_params, "fallback"


def candidates(transformers) -> list[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    names = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES) | set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)
    return sorted(n for n in names if n in CONFIG_MAPPING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=60, help="seconds per architecture and side")
    parser.add_argument("--only", default="", help="comma-separated model_types")
    parser.add_argument("--json", default="", help="also write the rows here")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from inspector.errors import InspectError

    transformers.logging.set_verbosity_error()
    names = args.only.split(",") if args.only else candidates(transformers)
    rows = []
    print(f"{'model_type':<34} {'status':<10} {'ours':>18} {'transformers':>18}  note", flush=True)
    for mt in names:
        row = {"model_type": mt, "ours": None, "reference": None, "note": ""}
        try:
            config = CONFIG_MAPPING[mt]()
            cfg = config.to_dict()
            (row["reference"], cls), row["ref_s"] = _timed(lambda: reference(torch, transformers, config),
                                                           args.timeout)
            row["note"] = cls
        except Timeout:
            row["status"] = "ref-timeout"
        except Exception as e:  # transformers cannot build its own default config
            first = str(e).splitlines()[0][:80] if str(e) else ""
            row["status"], row["note"] = "no-ref", f"{type(e).__name__}: {first}"
        if row["reference"] is not None:
            try:
                (row["ours"], how), row["ours_s"] = _timed(lambda: ours(cfg, mt), args.timeout)
                row["status"] = "exact" if row["ours"] == row["reference"] else "MISMATCH"
                row["note"] = f"{how}, {row['note']}"
            except Timeout:
                row["status"] = "timeout"
            except InspectError as e:
                row["status"], row["note"] = "refused", str(e)[:140]
            except Exception as e:
                row["status"], row["note"] = "CRASH", f"{type(e).__name__}: {str(e)[:120]}"
        rows.append(row)
        fmt = lambda v: f"{v:,}" if isinstance(v, int) else "-"  # noqa: E731
        print(f"{mt:<34} {row['status']:<10} {fmt(row['ours']):>18} {fmt(row['reference']):>18}  {row['note']}",
              flush=True)
    built = [r for r in rows if r["reference"] is not None]
    exact = sum(r["status"] == "exact" for r in rows)
    counts = {s: sum(r["status"] == s for r in rows) for s in sorted({r["status"] for r in rows})}
    print(f"{exact} of {len(built)} exact ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
