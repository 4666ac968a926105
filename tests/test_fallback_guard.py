"""The fallback's config.json never runs or fetches code, and refuses sizes it would take minutes to build.

Each field of transformers 5.25 that can name code, a Hub kernel or another repository is put into a
tiny config of a model with no native family (falcon); transformers' kernel loaders, the Hub
download and lookup functions and socket connections are replaced by tripwires that record a call.
A field that changes no shape must give the same total as the plain config, with no tripwire hit;
a field naming another repository is refused in one line, before anything is fetched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from inspector.errors import InspectError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from inspector.inventory.meta_guard import MAX_META_LAYERS, bounded, safe_fields  # noqa: E402
from inspector.inventory.transformers_meta import meta_account  # noqa: E402

TINY = {"model_type": "falcon", "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2,
        "vocab_size": 100, "new_decoder_architecture": True, "num_kv_heads": 2}


@pytest.fixture
def tripwires(monkeypatch):
    """Every way the build could fetch or import code records its call here (and fails)."""
    import huggingface_hub
    import kernels
    import transformers.backbone_utils as backbone_utils
    import transformers.integrations.hub_kernels as hub_kernels
    import transformers.modeling_utils as modeling_utils

    calls: list[str] = []

    def wire(name):
        def tripped(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called")
        return tripped

    for module, attr in ((kernels, "get_kernel"), (hub_kernels, "get_kernel"), (hub_kernels, "lazy_load_kernel"),
                         (hub_kernels, "load_and_register_attn_kernel"),
                         (modeling_utils, "lazy_import_flash_attention"),
                         (huggingface_hub, "hf_hub_download"), (huggingface_hub, "snapshot_download"),
                         (huggingface_hub.HfApi, "repo_exists"), (backbone_utils, "hf_api"),
                         (transformers.PreTrainedConfig, "get_config_dict")):
        monkeypatch.setattr(module, attr, wire(f"{getattr(module, '__name__', module)}.{attr}"))
    monkeypatch.setattr("socket.socket.connect", wire("socket.connect"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the build must be sealed whatever the environment says
    monkeypatch.setenv("USE_HUB_KERNELS", "YES")
    return calls


def _total(cfg: dict) -> int:
    return meta_account(cfg, "tiny", "config.json").totals.total_params


# fields that name code or a kernel and change no shape: dropped, same total
DROPPED = {
    "attn-kernel-repo": {"attn_implementation": "kernels-community/flash-attn2"},
    "attn-kernel-private": {"_attn_implementation": "someone/evil-kernel@main:attn"},
    "attn-flash-fallback": {"attn_implementation": "flash_attention_2"},  # no flash-attn: a Hub kernel instead
    "experts-kernel": {"experts_implementation": "someone/moe-kernel"},
    "other-implementation": {"mamba_implementation": "someone/ssm-kernel"},
    "use-kernels": {"use_kernels": True, "kernel_config": {"kernel_mapping": {"RMSNorm": "someone/norm"}}},
    "auto-map": {"auto_map": {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}, "trust_remote_code": True},
    "custom-pipelines": {"custom_pipelines": {"text-generation": {"impl": "evil.Pipeline"}}},
    "quantization-kernel": {"quantization_config": {"quant_method": "mxfp4"}},
    "pretrained-backbone": {"use_pretrained_backbone": True},
}


@pytest.mark.parametrize("extra", list(DROPPED.values()), ids=list(DROPPED))
def test_fields_naming_code_are_dropped(tripwires, extra):
    assert _total({**TINY, **extra}) == _total(dict(TINY))
    assert tripwires == []
    assert os.environ["HF_HUB_OFFLINE"] == "0" and os.environ["USE_HUB_KERNELS"] == "YES"  # restored after


# fields naming another repository or model: refused in one line before anything is fetched
NAMING = {
    "backbone-repo": ({"backbone": "owner/name"}, "backbone"),
    "backbone-timm": ({"backbone": "resnet50", "use_timm_backbone": True}, "backbone"),
    "backbone-config-repo": ({"backbone_config": "owner/name"}, "backbone_config"),
    "nested-backbone": ({"vision_config": {"backbone": "owner/name"}}, "vision_config.backbone"),
    "timm-hub-architecture": ({"vision_config": {"model_type": "timm_wrapper", "architecture": "hf-hub:owner/name"}},
                              "vision_config.architecture"),
}


@pytest.mark.parametrize("extra,field", list(NAMING.values()), ids=list(NAMING))
def test_fields_naming_a_repository_are_refused(tripwires, extra, field):
    with pytest.raises(InspectError) as e:
        _total({**TINY, **extra})
    assert f"field '{field}' names another model" in str(e.value) and "\n" not in str(e.value)
    assert tripwires == []


def test_nested_fields_dropped_and_plain_names_kept():
    cfg = {"architecture": "resnet50", "backbone": None, "text_config": {"hidden_size": 8}}
    assert safe_fields(cfg, "c") == cfg
    nested = {"text_config": {"hidden_size": 8, "attn_implementation": "someone/kernel",
                              "vision_config": {"_attn_implementation": "someone/kernel", "auto_map": {}}}}
    assert safe_fields(nested, "c") == {"text_config": {"hidden_size": 8, "vision_config": {}}}


TOO_BIG = {
    "layers": ({"model_type": "bloom", "n_layer": 100_000}, "field 'n_layer' must be at most 1,000"),
    "nested-layers": ({"text_config": {"num_hidden_layers": 5_000}}, "field 'text_config.num_hidden_layers'"),
    "hidden-over-int32": ({"hidden_size": 2**40}, "field 'hidden_size' must be at most 2,147,483,647"),
    "expert-blocks": ({"num_hidden_layers": 900, "num_experts": 10_000}, "900 layers x 10,000 experts"),
    "estimate": ({"hidden_size": 2**30, "num_hidden_layers": 100}, "parameters (hidden_size 1,073,741,824"),
}


@pytest.mark.parametrize("cfg,message", list(TOO_BIG.values()), ids=list(TOO_BIG))
def test_sizes_beyond_the_bounds_refused(cfg, message):
    with pytest.raises(InspectError) as e:
        bounded(cfg, "config.json")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bounds_let_real_sizes_through():
    bounded({"num_hidden_layers": MAX_META_LAYERS, "hidden_size": 16384, "vocab_size": 262144}, "c")
    bounded({"num_hidden_layers": 61, "hidden_size": 7168, "n_routed_experts": 384,  # Kimi K2
             "moe_intermediate_size": 2048, "vocab_size": 163840, "rope_theta": 50_000_000_000}, "c")


def test_bloom_with_100k_layers_refused_in_well_under_a_second(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bloom", "n_layer": 100_000}))
    code = ("import time; t = time.perf_counter()\n"
            "from inspector.cli.app import app\n"
            "from typer.testing import CliRunner\n"
            f"r = CliRunner().invoke(app, ['params', {str(tmp_path)!r}])\n"
            "print(r.exit_code, round(time.perf_counter() - t, 3)); print(r.stderr, end='')")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, stderr = out.split("\n", 1)
    code_, seconds = first.split()
    assert code_ == "2" and stderr.count("\n") == 1 and "'n_layer' must be at most 1,000" in stderr
    assert float(seconds) < 10 and time.perf_counter() - start < 30  # refused before building (it took 75 s and more)
