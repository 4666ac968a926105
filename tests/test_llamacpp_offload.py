"""llama.cpp's offload rules and plan (inspector.memory.llamacpp_offload).

Oracles: on this CPU-only machine -ngl has no effect (load_tensors: act_gpu_layers = 0 without devices), so a
plan's CPU totals must equal llama.cpp's exact bytes (``llama_get_memory_breakdown``) and printed MiB, recorded
in fixtures/llamacpp/runs with llama-cpp-python 0.3.36. Flag spellings and value syntax are those common/arg.cpp
accepts (ggml-org/llama.cpp@0c1e57098, copied below with line references). The GPU placement itself is read
from the source and not measured here (no GPU): those tests pin the rules stated in the source.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from inspector.checkpoint.gguf import GGUFTensor
from inspector.memory.llamacpp import LlamaCppSettings
from inspector.memory.llamacpp_offload import (Hardware, Placement, device_totals, layer_devices, plan,
                                               tensor_devices)
from test_llamacpp import gguf_files, settings  # noqa: F401  (the fixture and the settings record)

FX = Path(__file__).resolve().parent.parent / "fixtures" / "llamacpp"
# every fifth recorded setting with llama.cpp's exact bytes (the `fa auto` runs have none): both models, all knobs
RUNS = [p for p in sorted((FX / "runs").glob("*.json")) if json.loads(p.read_text()).get("exact_bytes")][::5]
GIB = 1 << 30
SMOL = "smollm2-135m-instruct-q4_1"
# common/arg.cpp (0c1e57098) spellings: -ngl/--gpu-layers/--n-gpu-layers L2789 (stoi, or auto/all);
# -ncmoe/--n-cpu-moe L2767 (int >= 0); -ts/--tensor-split L2831 (split on [,/]+, stof each);
# -ot/--override-tensor L2754 ("<regex>=<buffer type>", comma-separated; buffer type a device's buft name);
# -c/--ctx-size (int)
# -c L1639, -b L1669, -ub L1676, -np L2544 (ints); -fa L1754 on|off|auto; -ctk/-ctv L2437/L2450 (cache types);
# -lm/--load-mode L2691 (auto|none|mmap|mlock|mmap+mlock|dio); --swa-full L1690 and -kvu L1724 take no value
ACCEPTED = {"-ngl", "--gpu-layers", "--n-gpu-layers", "-ncmoe", "--n-cpu-moe", "-ts", "--tensor-split",
            "-ot", "--override-tensor", "-c", "--ctx-size", "-b", "-ub", "-np", "-fa", "-ctk", "-ctv", "-lm"}
SWITCHES = {"--swa-full", "-kvu"}
CACHE_TYPES = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"}  # arg.cpp kv_cache_types


def _accepts(flags: list[str], bufts: set[str]) -> None:
    """The value syntax of common/arg.cpp for the flags a plan pastes."""
    flags = [x for x in flags if x not in SWITCHES]
    assert len(flags) % 2 == 0
    for name, value in zip(flags[::2], flags[1::2]):
        assert name in ACCEPTED, name
        if name in ("-fa", "-lm", "-ctk", "-ctv"):
            assert value in {"-fa": {"on", "off", "auto"}, "-lm": {"auto", "none", "mmap", "mlock", "mmap+mlock", "dio"},
                             "-ctk": CACHE_TYPES, "-ctv": CACHE_TYPES}[name], (name, value)
        elif name in ("-ngl", "-c", "--n-cpu-moe", "-b", "-ub", "-np"):
            assert value in ("auto", "all") if not re.fullmatch(r"\d+", value) else int(value) >= 0
        elif name == "-ts":
            assert all(float(x) > 0 for x in re.split(r"[,/]+", value))
        elif name == "-ot":
            for ov in value.split(","):
                pattern, _, buft = ov.partition("=")
                re.compile(pattern)
                assert buft in bufts


@pytest.mark.parametrize("run", RUNS, ids=[p.stem for p in RUNS])
@pytest.mark.parametrize("ngl", [0, 7, 99])
def test_cpu_plan_equals_llamacpp_bytes(run, ngl, gguf_files):  # noqa: F811
    """Without a GPU any -ngl leaves every buffer on the CPU: the totals are llama.cpp's exact bytes."""
    rec = json.loads(run.read_text())
    exact = rec["exact_bytes"]["by_buffer_type"]
    tot = device_totals(gguf_files(rec["model"]), settings(rec["settings"]), Placement(n_gpu_layers=ngl))
    assert list(tot) == ["CPU"]
    cpu = tot["CPU"]
    assert cpu.parts["model"] + cpu.parts.get("repack", 0) == sum(v["model"] for v in exact.values())
    assert cpu.parts["kv"] == exact["CPU"]["context"]
    assert cpu.parts["compute"] == exact["CPU"]["compute"]
    printed = {b["kind"]: b["mib"] for b in rec["buffers"]}
    assert f"{cpu.parts['output'] / (1 << 20):.2f}" == printed["output"]
    assert set(cpu.status.values()) == {"exact"}


def test_cpu_only_plan_totals(gguf_files):  # noqa: F811
    """The JSON plan with no GPU: all layers asked for, the CPU total = the sum of the printed buffers' bytes."""
    rec = json.loads((FX / "runs" / "gemma-3-270m-q4_k_m-c1000-b2048-ub512-faon-kf16-vf16-s1.json").read_text())
    p = plan(gguf_files(rec["model"]), settings(rec["settings"]), Hardware((), 16 * GIB))
    exact = rec["exact_bytes"]["by_buffer_type"]
    out = 262144 * 4  # the output buffer: n_vocab floats (1.00 MiB printed), not in the breakdown
    assert p["devices"][0]["bytes"] == sum(sum(v.values()) for v in exact.values()) + out


@pytest.mark.parametrize("model", ["smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m"])
def test_8gb_gpu_plan_flags(model, gguf_files):  # noqa: F811
    """A hypothetical 8 GB GPU holds these small models whole: -ngl n_layer + 1 (output layer too)."""
    p = plan(gguf_files(model), LlamaCppSettings(), Hardware((8 * 10**9,), 16 * GIB))
    assert p["fits"] and p["n_gpu_layers"] == p["n_layer"] + 1 and p["output_layer_on_gpu"]
    _accepts(p["flags"], {"CPU", "CUDA0"})
    assert [d["device"] for d in p["devices"]] == ["CPU", "CUDA0"]
    # only the input layer (token_embd) is left on the CPU (load_tensors: dev_input is always the CPU)
    assert set(p["devices"][0]["parts"]) == {"model", "output"}


@pytest.mark.parametrize("model", ["smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m"])
def test_more_vram_more_layers(model, gguf_files):  # noqa: F811
    f, s = gguf_files(model), LlamaCppSettings(n_ctx=2048)
    layers = [plan(f, s, Hardware((mib << 20,), 16 * GIB))["n_gpu_layers"] for mib in range(100, 1200, 50)]
    assert layers == sorted(layers) and layers[0] == 0 and layers[-1] == 31 - 12 * (model != SMOL)


def test_two_gpus_split_and_flags(gguf_files):  # noqa: F811
    p = plan(gguf_files("gemma-3-270m-q4_k_m"), LlamaCppSettings(), Hardware((12 * GIB, 4 * GIB), 64 * GIB))
    assert "-ts" in p["flags"] and p["flags"][p["flags"].index("-ts") + 1] == "3,1"
    _accepts(p["flags"], {"CPU", "CUDA0", "CUDA1"})


def test_layers_counted_from_the_end():
    """i_gpu_start = n_layer + 1 - ngl: -ngl 1 offloads the output layer only; -ngl n_layer leaves layer 0."""
    g = ("CUDA0",)
    assert layer_devices(4, Placement(1, g)) == ["CPU"] * 4 + ["CUDA0"]
    assert layer_devices(4, Placement(4, g)) == ["CPU"] + ["CUDA0"] * 4
    assert layer_devices(4, Placement(-1, g)) == ["CUDA0"] * 5
    assert layer_devices(4, Placement(99, ())) == ["CPU"] * 5  # no GPU: -ngl has no effect
    # -ts 3,1 over 8 layers + output: upper_bound of i/9 over (0.75, 1.0)
    assert layer_devices(8, Placement(-1, ("CUDA0", "CUDA1"), (3, 1))) == ["CUDA0"] * 7 + ["CUDA1"] * 2


def _moe(f):
    """SmolLM2's header with made-up expert tensors in each layer (8 experts of ffn_up's shape)."""
    extra = [GGUFTensor(f"blk.{i}.ffn_{w}_exps.weight", t.ggml_type, t.quant, t.stored_shape + (8,), t.offset,
                        t.nbytes * 8)
             for t in f.tensors for i in [t.name.split(".")[1]] for w in ("up",)
             if t.name.endswith("ffn_up.weight")]
    return dataclasses.replace(f, tensors=list(f.tensors) + extra)


def test_n_cpu_moe_patterns(gguf_files):  # noqa: F811
    """--n-cpu-moe N: blk\\.<i>\\.ffn_(up|down|gate|gate_up)_(ch|)exps = CPU for i < N (common/common.h)."""
    f = _moe(gguf_files("smollm2-135m-instruct-q4_1"))
    where = tensor_devices(f, Placement(-1, ("CUDA0",), n_cpu_moe=3))
    cpu_exps = sorted(n for n, d in where.items() if "exps" in n and d == "CPU")
    assert cpu_exps == [f"blk.{i}.ffn_up_exps.weight" for i in range(3)]
    assert where["blk.12.ffn_up.weight"] == "CUDA0"  # not an expert tensor: no match for blk.1 either
    s = LlamaCppSettings(n_ctx=2048)
    ncmoe = [plan(f, s, Hardware((mib << 20,), 64 * GIB))["n_cpu_moe"] for mib in (900, 1100, 1300, 1600)]
    assert ncmoe == sorted(ncmoe, reverse=True)


def test_override_tensor_to_cpu(gguf_files):  # noqa: F811
    f = gguf_files("smollm2-135m-instruct-q4_1")
    where = tensor_devices(f, Placement(-1, ("CUDA0",), overrides=((r"ffn_down", "CPU"),)))
    assert {d for n, d in where.items() if "ffn_down" in n} == {"CPU"}
    assert where["blk.0.ffn_up.weight"] == "CUDA0"


def test_tied_output_copied_to_the_gpu(gguf_files):  # noqa: F811
    """Neither file has output.weight: at -ngl n_layer + 1 the output layer's duplicate of token_embd is a second
    copy on the GPU (its CUDA alloc size, 128-aligned), and token_embd itself stays on the CPU (input layer)."""
    f = gguf_files(SMOL)
    embd = next(t for t in f.tensors if t.name == "token_embd.weight")
    full = device_totals(f, LlamaCppSettings(), Placement(31, ("CUDA0",)))
    out_only = device_totals(f, LlamaCppSettings(), Placement(1, ("CUDA0",)))  # -ngl 1: the output layer first
    assert full["CPU"].parts["model"] == embd.nbytes  # the mmap range of token_embd alone
    norm = next(t for t in f.tensors if t.name == "output_norm.weight")
    # q8_0 rows of 576: the last row padded to 1024 elements (MATRIX_ROW_PADDING 512): 448 / 32 * 34 bytes more
    assert embd.quant == "Q8_0" and embd.stored_shape[0] == 576
    assert out_only["CUDA0"].parts["model"] == -(-(embd.nbytes + 448 // 32 * 34) // 128) * 128 + norm.nbytes


def test_gpu_build_has_no_cpu_repack(gguf_files):  # noqa: F811
    """With a GPU, CPU-side weights pick the host buffer type first (then plain CPU under mmap): no CPU_REPACK."""
    f = gguf_files("gemma-3-270m-q4_k_m")
    cpu_only = device_totals(f, LlamaCppSettings(), Placement(5, ()))
    gpu = device_totals(f, LlamaCppSettings(), Placement(5, ("CUDA0",)))
    assert "repack" in cpu_only["CPU"].parts and "repack" not in gpu["CPU"].parts


def test_cli_plan_json():
    """`inspect memory GGUF --engine llama.cpp --gpu-memory-gib G [--gpus N] --format json`: the plan."""
    from typer.testing import CliRunner

    from conftest import smollm2_gguf_path
    from inspector.cli.app import app

    base = ["memory", str(smollm2_gguf_path()), "--engine", "llama.cpp", "--format", "json"]
    runs = [CliRunner().invoke(app, base + ["--gpu-memory-gib", g]) for g in ("8", "0.2")]
    assert [r.exit_code for r in runs] == [0, 0], [r.output for r in runs]
    full, part = (json.loads(r.stdout) for r in runs)
    assert full["flags"][-2:] == ["-ngl", "31"] and full["ram_checked"] is False
    assert full["flags"][:2] == ["-c", "4096"] and "-lm" not in full["flags"]
    assert 0 < part["n_gpu_layers"] < 31 and part["devices"][1]["bytes"] <= 0.2 * GIB
    _accepts(part["flags"], {"CPU", "CUDA0"})
    two = CliRunner().invoke(app, base + ["--gpu-memory-gib", "0.1", "--gpus", "2"])
    assert two.exit_code == 0 and "-ts" in json.loads(two.stdout)["flags"]
    bad = CliRunner().invoke(app, base + ["--n-gpu-layers", "-3"])
    assert bad.exit_code == 2 and "--n-gpu-layers -3" in bad.output


def test_flags_carry_the_settings(gguf_files):  # noqa: F811
    """The pasted flags reproduce the settings the plan was sized for (KV and compute depend on them)."""
    s = LlamaCppSettings(n_ctx=8192, n_ubatch=256, n_seq_max=2, kv_unified=True, flash_attn="on", type_k="q8_0",
                         type_v="q8_0", swa_full=True, use_mmap=False)
    fl = plan(gguf_files("gemma-3-270m-q4_k_m"), s, Hardware((8 * 10**9,), 16 * GIB))["flags"]
    _accepts(fl, {"CPU", "CUDA0"})
    assert " ".join(fl) == ("-c 8192 -b 2048 -ub 256 -np 2 -fa on -ctk q8_0 -ctv q8_0 -kvu --swa-full -lm none "
                            "-ngl 19")


@pytest.mark.parametrize("run", RUNS, ids=[p.stem for p in RUNS])
def test_device_buffers_without_a_gpu_are_the_cpu_printout(run, gguf_files):  # noqa: F811
    """The per-device lines with no GPU (any -ngl) are llama.cpp's recorded lines, word for word."""
    from inspector.memory.llamacpp_offload import device_buffers, offload_printout

    rec = json.loads(run.read_text())
    f, s = gguf_files(rec["model"]), settings(rec["settings"])
    bufs = device_buffers(f, s, Placement(n_gpu_layers=20))
    assert [(b.func, b.device, b.kind, b.mib) for b in bufs] == \
        [(b["func"], b["device"], b["kind"], b["mib"]) for b in rec["buffers"]]
    lines = offload_printout(f, s, Placement(n_gpu_layers=20))
    assert [x for x in lines if "buffer size" in x] == [b["line"] for b in rec["buffers"]]
    assert [x for x in lines if x.startswith("llama_kv_cache: size")] == [c["line"] for c in rec["kv_caches"]]


def test_kv_per_cache_per_device(gguf_files):  # noqa: F811
    """Gemma 3 (iSWA, pattern 6: layers 5, 11, 17 non-SWA): -ngl 10 puts the output layer and layers 9..17 on
    CUDA0 (i_gpu_start = 19 - 10 = 9), so two non-SWA layers (11, 17 of 3) and 7 SWA layers (of 15) there; each
    cache's devices sum to its size. Within a cache the buffers come in buffer-type name order ("CPU" < "CUDA0":
    the std::map with strcmp in src/llama-kv-cache.cpp L104-110)."""
    from inspector.memory.llamacpp_offload import device_buffers

    f = gguf_files("gemma-3-270m-q4_k_m")
    s = LlamaCppSettings(n_ctx=4096)
    bufs = [b for b in device_buffers(f, s, Placement(10, ("CUDA0",))) if b.kind == "kv"]
    cpu = [b for b in device_buffers(f, s, Placement()) if b.kind == "kv"]  # non-SWA first, then SWA
    assert [b.device for b in bufs] == ["CPU", "CUDA0", "CPU", "CUDA0"]
    assert bufs[1].nbytes == cpu[0].nbytes * 2 // 3 and bufs[3].nbytes == cpu[1].nbytes * 7 // 15
    assert bufs[0].nbytes + bufs[1].nbytes == cpu[0].nbytes and bufs[2].nbytes + bufs[3].nbytes == cpu[1].nbytes


def test_decode_reads_only_the_experts_used(gguf_files):  # noqa: F811
    """An MoE token reads expert_used_count / expert_count of each expert tensor (assumed; batch 1)."""
    from inspector.compute.llamacpp_speed import weight_bytes_read

    f = _moe(gguf_files(SMOL))
    f = dataclasses.replace(f, metadata={**f.metadata, "llama.expert_count": 8, "llama.expert_used_count": 2})
    exps = sum(t.nbytes for t in f.tensors if "exps" in t.name)
    dense = weight_bytes_read(dataclasses.replace(f, tensors=[t for t in f.tensors if "exps" not in t.name]),
                              Placement())
    assert weight_bytes_read(f, Placement())["CPU"] == dense["CPU"] + exps // 4
