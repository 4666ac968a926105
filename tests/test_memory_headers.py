"""`inspect memory` counts the weights from the checkpoint's own headers when they are at hand (a local
directory, a safetensors file, --weights, a Hub repo), tensor by tensor, split over TP ranks as vLLM
splits them; --dtype stays a what-if; a checkpoint that does not match its config is a stated fallback.

Every expected figure below is worked out by hand from the tensors each test writes."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from inspector.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
GPTQ = ROOT / "fixtures" / "checkpoints" / "tiny-llama-gptq"
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "F8_E4M3": 1}
# hidden 64, 4 heads of 16, 2 kv heads, intermediate 128, 2 layers, vocab 128 (a multiple of 64: no padding)
CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 128, "hidden_size": 64,
          "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
          "hidden_act": "silu", "torch_dtype": "bfloat16"}
LINEARS = {"self_attn.q_proj": (64, 64), "self_attn.k_proj": (32, 64), "self_attn.v_proj": (32, 64),
           "self_attn.o_proj": (64, 64), "mlp.gate_proj": (128, 64), "mlp.up_proj": (128, 64),
           "mlp.down_proj": (64, 128)}  # (out, in)
AWQ = {"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": True, "version": "gemm"}

runner = CliRunner()


def write_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]]) -> int:
    """A safetensors file of zeros (name -> (dtype, shape)); returns the bytes its tensors occupy."""
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = SIZE[dtype]
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return offset


def plain(dtype: str = "BF16") -> dict[str, tuple[str, tuple[int, ...]]]:
    out = {"model.embed_tokens.weight": (dtype, (128, 64)), "model.norm.weight": (dtype, (64,)),
           "lm_head.weight": (dtype, (128, 64))}
    for i in range(2):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = out[p + "post_attention_layernorm.weight"] = (dtype, (64,))
        out.update({f"{p}{m}.weight": (dtype, shape) for m, shape in LINEARS.items()})
    return out


def awq() -> dict[str, tuple[str, tuple[int, ...]]]:
    """AutoAWQ's GEMM layout: qweight I32 (in, out/8), qzeros I32 (in/32, out/8), scales F16 (in/32, out)."""
    out = {k: v for k, v in plain("F16").items() if not any(m in k for m in LINEARS)}
    for i in range(2):
        for m, (o, n) in LINEARS.items():
            p = f"model.layers.{i}.{m}."
            out.update({p + "qweight": ("I32", (n, o // 8)), p + "qzeros": ("I32", (n // 32, o // 8)),
                        p + "scales": ("F16", (n // 32, o))})
    return out


def model_dir(tmp_path: Path, tensors, name: str = "m", **config) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps({**CONFIG, **config}))
    write_safetensors(d / "model.safetensors", tensors)
    return d


def run_json(*args: str) -> dict:
    result = runner.invoke(app, ["memory", *map(str, args), "--gpu", "1", "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# per layer: AWQ bytes of the seven Linears (q 2,048 + 64 + 256; k and v 1,024 + 32 + 128 each; o as q;
# gate, up, down 4,096 + 128 + 512 each) and two F16 norms of 64
AWQ_LAYER, NORMS = 2368 + 1184 + 1184 + 2368 + 3 * 4736, 2 * 64 * 2
PARAMS = 2 * 128 * 64 + 64 + 2 * (2 * 64 + 64 * 64 * 2 + 32 * 64 * 2 + 3 * 128 * 64)


def test_a_local_directory_is_counted_from_its_headers(tmp_path):
    d = model_dir(tmp_path, plain())
    data = run_json(d)
    assert data["checkpoint_weights_bytes"] == 2 * PARAMS == 2 * 90_432
    assert data["weights_status"] == "exact" and data["weights_source"] == f"safetensors headers of {d}"
    assert "matched to the model's" in data["weights_notes"][0]


def test_awq_per_tensor_widths_and_tp2_per_rank_bytes(tmp_path):
    """AWQ int4 (packed I32 + F16 scales and zeros) where config.json's torch_dtype says 16 bits: TP 1 holds the
    stored bytes; TP 2 halves every Linear (column-parallel along out, row-parallel along in and its groups),
    the vocab-parallel embedding and head (64 rows each) and keeps the norms whole."""
    d = model_dir(tmp_path, awq(), quantization_config=AWQ, torch_dtype="float16")
    one = run_json(d)
    assert one["checkpoint_weights_bytes"] == 2 * 128 * 64 * 2 + 64 * 2 + 2 * (AWQ_LAYER + NORMS) == 76_032
    assert one["weights_source"] == f"safetensors headers of {d}" and one["weights_status"] == "exact"
    two = run_json(d, "--tp", 2)
    per_rank = 2 * 64 * 64 * 2 + 64 * 2 + 2 * (AWQ_LAYER // 2 + NORMS)
    assert [r["weights_bytes"] for r in two["ranks"]] == [per_rank, per_rank] == [38_336, 38_336]
    assert two["checkpoint_weights_bytes"] == per_rank
    what_if = run_json(d, "--tp", 2, "--dtype", "bf16")  # --dtype wins over the headers
    bf16_rank = 2 * 64 * 64 * 2 + 64 * 2 + 2 * (36_864 * 2 // 2 + NORMS)  # 36,864 Linear elements per layer
    assert what_if["checkpoint_weights_bytes"] == bf16_rank == 90_752 and what_if["weights_source"] == "--dtype bf16 (what-if)"


def test_gptq_fixture_counts_its_stored_bytes_and_vocab_padding():
    """fixtures/checkpoints/tiny-llama-gptq: 73,216 stored bytes; vLLM pads the 101-row embedding and head
    to 128 rows (F16: 2 × 27 × 64 × 2 B more)."""
    data = run_json(GPTQ)
    assert data["checkpoint_weights_bytes"] == 73_216 + 2 * 27 * 64 * 2
    assert data["weights_source"] == f"safetensors headers of {GPTQ}"
    assert run_json(GPTQ, "--dtype", "fp16")["checkpoint_weights_bytes"] == 2 * (86_976 + 2 * 27 * 64)


def test_gptq_tp2_keeps_column_parallel_g_idx_whole(tmp_path):
    """TP 2 (docs/memory.md works it out): per rank 64 padded rows of embedding and head (2 × 8,192 B), the
    final norm (128 B); per layer the norms (256 B), half the Linears' 23,360 stored bytes, and the g_idx
    (in × 4 B) of q, k, v, gate and up whole (vLLM sizes g_idx by the rank's input): 5 × 64 × 4 / 2 more.
    config.json's quantization_config alone (no safetensors beside it) gives the same bytes."""
    per_layer = 256 + 23_360 // 2 + 5 * 64 * 4 // 2
    data = run_json(GPTQ, "--tp", 2)
    assert [r["weights_bytes"] for r in data["ranks"]] == [2 * 8192 + 128 + 2 * per_layer] * 2 == [41_664] * 2
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((GPTQ / "config.json").read_text())
    from_config = run_json(bare, "--tp", 2)
    assert from_config["checkpoint_weights_bytes"] == 41_664 and from_config["weights_source"] == "config.json's quantization_config"


def test_kept_bytes_follow_vllms_gptq_and_per_channel_layouts():
    from inspector.memory.serving import kept_bytes

    assert kept_bytes((64, 64), "x.g_idx", (64,), 256) == (0, 256)  # whole under a column split
    assert kept_bytes((128, 64), "x.weight_scale", (128, 1), 512) == (512, 0)  # per-channel: whole under a row split
    assert kept_bytes((128, 64), "x.weight_scale", (), 4) == (4, 4)  # per-tensor: whole either way
    assert kept_bytes((128, 64), "x.scales", (2, 128), 512) == (0, 0)  # group scales split with the weight
    assert kept_bytes((128, 64), "x.scales", (2, 128), 512, desc_act=True) == (512, 0)  # act-order row-parallel


def test_tensors_the_model_does_not_define_are_left_out_and_f32_counts_16_bits(tmp_path):
    tensors = {**plain("F32"), "model.layers.0.self_attn.rotary_emb.inv_freq": ("F32", (8,)),
               "model.mtp.proj.weight": ("BF16", (64, 64))}
    d = model_dir(tmp_path, tensors)
    data = run_json(d)
    assert data["checkpoint_weights_bytes"] == 2 * PARAMS
    notes = " ".join(data["weights_notes"])
    assert "2 stored tensors the model does not define or share (8,224 B" in notes
    assert "stored in 32 bits count 2 B per element" in notes


def test_headers_that_miss_a_tensor_fall_back_in_one_stated_line(tmp_path):
    tensors = plain()
    del tensors["model.layers.1.mlp.up_proj.weight"]
    d = model_dir(tmp_path, tensors)
    result = runner.invoke(app, ["memory", str(d), "--gpu", "1", "-f", "json"])
    assert result.exit_code == 0 and "Traceback" not in result.output
    data = json.loads(result.stdout)
    assert data["weights_source"] == "config.json (no quantization_config: 16 bits per parameter)"
    assert data["weights_notes"] == [
        f"safetensors headers of {d} do not match config.json: 1 tensor of config.json missing "
        "(model.layers.1.mlp.up_proj.weight): widths from config.json instead (`inspect verify` lists the tensors)"]
    text = runner.invoke(app, ["memory", str(d), "--gpu", "1"]).output
    assert "do not match config.json" in " ".join(text.split())


def test_weights_path_uses_the_same_mechanism_or_splits_an_unmatched_total(tmp_path):
    awq_file = model_dir(tmp_path, awq(), "q") / "model.safetensors"
    d = model_dir(tmp_path, plain(), quantization_config=AWQ, torch_dtype="float16")
    data = run_json(d, "--weights", awq_file, "--tp", 2)
    assert data["checkpoint_weights_bytes"] == 38_336 and data["weights_source"] == f"safetensors headers of {awq_file}"
    other = tmp_path / "other.safetensors"
    total = write_safetensors(other, {"a": ("F16", (101, 32)), "b": ("I32", (7,))})
    split = run_json(d, "--weights", other, "--tp", 2)
    assert split["checkpoint_weights_bytes"] == total // 2 and split["weights_status"].startswith("assumed (even split")
    assert split["weights_source"] == f"stored total of {other}, split evenly"


def _hub_memory(tmp_path: Path, repo: str, extra_env: dict | None = None) -> dict:
    from hubserver import HubServer

    code = ("import sys; from typer.testing import CliRunner; from inspector.cli.app import app; "
            f"r = CliRunner().invoke(app, ['memory', {repo!r}, '--gpu', '1', '-f', 'json']); "
            "sys.stdout.write(r.stdout); sys.exit(r.exit_code)")
    with HubServer(tmp_path / "hub") as server:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=server.env(tmp_path / "home", **(extra_env or {})),
                             capture_output=True, text=True, timeout=120)
        hub_reads = [r.path for r in server.log if r.path.endswith(".safetensors")]
    assert out.returncode == 0, out.stderr
    return {**json.loads(out.stdout), "reads": hub_reads}


def test_a_hub_repo_is_counted_from_its_headers_read_by_range(tmp_path):
    repo = tmp_path / "hub" / "org"
    repo.mkdir(parents=True)
    model_dir(repo, awq(), "awq", quantization_config=AWQ, torch_dtype="float16")
    data = _hub_memory(tmp_path, "org/awq")
    assert data["checkpoint_weights_bytes"] == 76_032 and data["weights_source"] == "safetensors headers of hub:org/awq"
    assert data["reads"], "the header was read from the Hub"


def test_a_hub_repo_without_safetensors_falls_back_to_the_config(tmp_path):
    repo = tmp_path / "hub" / "org" / "cfg"
    repo.mkdir(parents=True)
    (repo / "config.json").write_text(json.dumps(CONFIG))
    data = _hub_memory(tmp_path, "org/cfg")
    assert data["checkpoint_weights_bytes"] == 2 * PARAMS
    assert data["weights_source"] == "config.json (no quantization_config: 16 bits per parameter)"
    assert data["weights_notes"][0].startswith("headers of hub:org/cfg not read (org/cfg: ")


def test_headers_and_quantization_config_agree_on_gpt_oss(tmp_path):
    """gpt-oss-20b (MXFP4 experts, bf16 rest): a header holding the tensors quantization_config implies (a sparse
    file: no data) gives, through verify's matching, the bytes stored.py gives from the config alone, per rank
    too; TP 1 is the published index's total_size, 13,761,264,768 B."""
    from inspector.inventory.accounting import account
    from inspector.memory.stored import stored_weights
    from inspector.source import resolve

    ref = ROOT / "fixtures" / "reference" / "configs" / "openai__gpt-oss-20b"
    d = tmp_path / "oss"
    d.mkdir()
    (d / "config.json").write_text((ref / "config.json").read_text())
    src = resolve(str(d))
    parts = {p.name: (p.dtype, p.shape) for st in stored_weights(account(src.spec()), src.config).tensors
             for p in st.parts}
    header, offset = {}, 0
    for name, (dtype, shape) in parts.items():
        size = SIZE[dtype] * math.prod(shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    with open(d / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    for tp in (1, 2):
        ours, config = run_json(d, "--tp", tp, "--gpu", "H100-80GB"), run_json(ref, "--tp", tp, "--gpu", "H100-80GB")
        assert ours["weights_source"] == f"safetensors headers of {d}"
        assert config["weights_source"] == "config.json's quantization_config"
        assert [r["weights_bytes"] for r in ours["ranks"]] == [r["weights_bytes"] for r in config["ranks"]]
    assert run_json(d, "--gpu", "H100-80GB")["checkpoint_weights_bytes"] == 13_761_264_768 == offset
