"""GPU offload of hybrid and recurrent models (lfm2, lfm2moe, granitehybrid, mamba2, nemotron_h, falcon-h1): the
recurrent state per device.

Oracles: without a GPU (-ngl has no effect on llama.cpp's CPU build), the per-device totals and buffer lines of
:mod:`inspector.memory.llamacpp_offload` must equal llama.cpp's recorded printouts and exact bytes of the synthetic
GGUFs (fixtures/llamacpp/synth, recorded with llama-cpp-python 0.3.36). With a GPU the placement is read from the
source, not measured: src/llama-memory-recurrent.cpp L77-96 (ggml-org/llama.cpp@0c1e57098) gives each recurrent
layer's R and S tensors the buffer type of ``model.dev_layer(i)`` (offload_kqv, the default), one buffer per
buffer type; a hybrid's attention layers keep their KV cache on their device, a recurrent-only model has none.
"""

from __future__ import annotations

import json

import pytest

from inspector.memory.llamacpp import LlamaCppSettings, predict_buffers, printout
from inspector.memory.llamacpp_graph import ARCHS
from inspector.memory.llamacpp_offload import Placement, device_buffers, device_totals, offload_printout
from llamacpp_records import FILES, SYN, synth_cache
from llamacpp_records import settings as _settings

RECURRENT = ("lfm2-", "lfm2moe-", "granitehybrid-", "mamba2-", "nemotron_h-", "falcon-h1-")
RUNS = sorted(p for p in (SYN / "runs").glob("*.json") if p.name.startswith(RECURRENT))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """The parsed header of a synthetic GGUF (header + sparse zeros up to the recorded size), once each."""
    return synth_cache(tmp_path_factory.mktemp("synth"))



def test_the_recurrent_fixtures_are_there():
    assert {FILES[json.loads(p.read_text())["model"]]["arch"] for p in RUNS} == \
        {"lfm2", "lfm2moe", "granitehybrid", "mamba2", "nemotron_h", "falcon-h1"}


@pytest.mark.parametrize("run", RUNS, ids=[p.stem for p in RUNS])
def test_no_gpu_totals_equal_llamacpp_exact_bytes(run, synth):
    """-ngl 99 on a CPU build: the CPU total's parts equal llama_get_memory_breakdown (context = KV + RS), and the
    buffer lines and printout equal the CPU prediction's (itself checked against llama.cpp's printout)."""
    rec = json.loads(run.read_text())
    f, s = synth(rec["model"]), _settings(rec["settings"])
    by = rec["exact_bytes"]["by_buffer_type"]
    tot = device_totals(f, s, Placement(n_gpu_layers=99))
    assert list(tot) == ["CPU"]
    cpu = tot["CPU"].parts
    assert cpu["kv"] == sum(d["context"] for d in by.values())
    if FILES[rec["model"]]["arch"] in ARCHS:
        assert cpu["compute"] == sum(d["compute"] for d in by.values())
    else:  # nemotron_h, falcon-h1: no graph template, the compute buffer stated as not modelled
        assert "compute" not in cpu
    assert cpu["model"] + cpu.get("repack", 0) == sum(d["model"] for d in by.values())
    pred = predict_buffers(f, s)
    assert [(b.func, b.device, b.kind, b.nbytes) for b in device_buffers(f, s, Placement(99))] == \
        [(b.func, b.device, b.kind, b.nbytes) for b in pred.buffers]
    assert offload_printout(f, s, Placement(99)) == printout(pred)
    assert [ln for ln in printout(pred) if ln.startswith("llama_memory_recurrent:")] == \
        [ln for ln in (SYN / rec["log"]).read_text().splitlines() if ln.startswith("llama_memory_recurrent:")]


def _rs(bufs) -> dict:
    return {b.device: b.nbytes for b in bufs if b.func == "llama_memory_recurrent"}


def test_lfm2_rs_state_follows_its_layer_to_the_gpu(synth):
    """lfm2-tiny: 4 layers, short-conv (recurrent) layers 0 and 2, attention layers 1 and 3; R = n_embd (128) x
    (l_cache 3 - 1) f32 per cell, 4 cells with --parallel 4, no S: 128 * 2 * 4 * 4 = 4096 B per recurrent layer.
    -ngl 3: i_gpu_start = 4 + 1 - 3 = 2, so layers 2, 3 and the output on CUDA0: one recurrent layer on each
    device, one attention layer's KV on each; -ngl 2: both recurrent layers on the CPU; -ngl all: both on CUDA0."""
    f = synth("lfm2-tiny")
    s = LlamaCppSettings(n_ctx=4096, n_batch=512, n_ubatch=512, n_seq_max=4, flash_attn="on")
    per_layer = 128 * (3 - 1) * 4 * 4
    cpu_only = predict_buffers(f, s)
    kv_all = next(b.nbytes for b in cpu_only.buffers if b.func == "llama_kv_cache")
    bufs = device_buffers(f, s, Placement(3, ("CUDA0",)))
    assert _rs(bufs) == {"CPU": per_layer, "CUDA0": per_layer}
    assert [b.device for b in bufs if b.func == "llama_memory_recurrent"] == ["CPU", "CUDA0"]  # strcmp order
    kv = {b.device: b.nbytes for b in bufs if b.func == "llama_kv_cache"}
    assert kv == {"CPU": kv_all // 2, "CUDA0": kv_all // 2}  # 4096 cells x 4 streams x 64 x 2 B, K and V
    assert _rs(device_buffers(f, s, Placement(2, ("CUDA0",)))) == {"CPU": 2 * per_layer}
    assert _rs(device_buffers(f, s, Placement(-1, ("CUDA0",)))) == {"CUDA0": 2 * per_layer}
    tot = device_totals(f, s, Placement(3, ("CUDA0",)))
    assert tot["CUDA0"].kv_caches == {"": kv_all // 2, "RS": per_layer}
    lines = offload_printout(f, s, Placement(3, ("CUDA0",)))
    rs = [ln for ln in lines if ln.startswith("llama_memory_recurrent:")]
    assert rs[0].split() == ["llama_memory_recurrent:", "CPU", "RS", "buffer", "size", "=", "0.00", "MiB"]
    assert rs[1].split()[1] == "CUDA0" and "(     4 cells,   4 layers,  4 seqs  0 rs_seq)" in rs[2]


def test_mamba2_has_no_kv_cache_and_its_state_splits_by_layer(synth):
    """mamba2-tiny: 3 layers, all recurrent (no KV cache); d_conv 4, d_inner 256, d_state 16, 1 group:
    R = 3 x (256 + 2 x 16) = 864 floats, S = 16 x 256 = 4096 floats per cell (f32); -ngl 2 puts layer 2 and the
    output on CUDA0 (i_gpu_start = 3 + 1 - 2), layers 0, 1 on the CPU. R and S rows are multiples of 128 B."""
    f = synth("mamba2-tiny")
    s = LlamaCppSettings(n_ctx=4096, n_batch=512, n_ubatch=512, flash_attn="on")
    per_layer = (864 + 4096) * 4
    bufs = device_buffers(f, s, Placement(2, ("CUDA0",)))
    assert [b for b in bufs if b.func == "llama_kv_cache"] == []
    assert _rs(bufs) == {"CPU": 2 * per_layer, "CUDA0": per_layer}
    assert {b.device: b.status for b in bufs if b.func == "llama_memory_recurrent"} == {"CPU": "exact",
                                                                                       "CUDA0": "source"}


def test_decode_reads_each_recurrent_layers_state_on_its_device(synth):
    """The decode bound's state bytes: a recurrent layer reads one sequence's R and S (f32) on its layer's
    device, an attention layer its K and V stream; mamba2-tiny at -ngl 2: layers 0, 1 on the CPU, 2 on CUDA0."""
    from inspector.compute.llamacpp_speed import kv_bytes_read

    s = LlamaCppSettings(n_ctx=4096, n_batch=512, n_ubatch=512, n_seq_max=2, flash_attn="on")
    assert kv_bytes_read(synth("mamba2-tiny"), s, Placement(2, ("CUDA0",))) == {"CPU": 2 * (864 + 4096) * 4,
                                                                               "CUDA0": (864 + 4096) * 4}
    got = kv_bytes_read(synth("lfm2-tiny"), s, Placement(3, ("CUDA0",)))  # KV: 2048 cells per stream x 64 x 2 B
    assert got == {"CPU": 256 * 4 + 2 * 2048 * 64 * 2, "CUDA0": 256 * 4 + 2 * 2048 * 64 * 2}


def test_nemotron_h_and_falcon_h1_states_and_kv_follow_their_layers(synth):
    """nemotron_h-tiny: layers M * - M (Mamba-2, attention, MLP, Mamba-2); d_conv 4, d_inner 256, d_state 16,
    2 groups: R = 3 x (256 + 2 x 2 x 16) = 960, S = 16 x 256 = 4096 floats per cell. -ngl 2: i_gpu_start = 4 + 1 - 2
    = 3, layer 3 on CUDA0: one Mamba-2 state on each device, the attention block's KV (layer 1) on the CPU, the MLP
    block none (create_memory's filter_attn). falcon-h1-tiny: 3 layers, each both recurrent (R = 3 x (256 + 32) =
    864, S = 4096) and in the KV cache (4096 cells x 64 x 2 B, K and V); -ngl 2: i_gpu_start = 3 + 1 - 2 = 2,
    layer 2 on CUDA0."""
    s = LlamaCppSettings(n_ctx=4096, n_batch=512, n_ubatch=512, flash_attn="on")
    bufs = device_buffers(synth("nemotron_h-tiny"), s, Placement(2, ("CUDA0",)))
    assert _rs(bufs) == {"CPU": (960 + 4096) * 4, "CUDA0": (960 + 4096) * 4}
    assert {b.device: b.nbytes for b in bufs if b.func == "llama_kv_cache"} == {"CPU": 4096 * 64 * 2 * 2}
    bufs = device_buffers(synth("falcon-h1-tiny"), s, Placement(2, ("CUDA0",)))
    assert _rs(bufs) == {"CPU": 2 * (864 + 4096) * 4, "CUDA0": (864 + 4096) * 4}
    assert {b.device: b.nbytes for b in bufs if b.func == "llama_kv_cache"} == {"CPU": 2 * 4096 * 64 * 2 * 2,
                                                                               "CUDA0": 4096 * 64 * 2 * 2}
