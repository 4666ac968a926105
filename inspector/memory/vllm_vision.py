"""vLLM's profile run of a vision encoder: the largest image, items per dummy batch, encoder peak and encoder cache.

Pure arithmetic (no torch). vLLM read (vllm-project/vllm):
- V1 ``vllm/v1/worker/gpu_model_runner.py`` ``profile_run``: when the model takes images, it builds
  ``_get_mm_dummy_batch(modality, max_items_per_batch)`` (each item the processor's largest image,
  ``get_image_size_with_most_features``), runs ``get_multimodal_embeddings`` on it in one call, keeps the
  outputs in ``encoder_cache`` during the text ``_dummy_run`` and sampler warm-up, then frees them.
- ``vllm/multimodal/budget.py`` ``MultiModalBudget._get_max_items`` (commit 03ff0a31): items per batch =
  max(1, min(encoder_budget // tokens_per_item, max_num_reqs x items_per_prompt)), items per prompt =
  max(1, min(limit, max_model_len // tokens_per_item)); without chunked prefill max_num_reqs is also
  capped by max_num_batched_tokens // tokens_per_item (V1 chunks, so not).
- ``vllm/v1/core/encoder_cache_manager.py`` ``compute_mm_encoder_budget``: compute budget =
  max(max_num_encoder_input_tokens, tokens_per_item), cache size = max(encoder_cache_size,
  tokens_per_item); both default to max_num_batched_tokens (SchedulerConfig), the budget is their min.
- ``--limit-mm-per-prompt`` default (MultiModalConfig.limit_per_prompt docstring): 1 per modality
  in V0, 999 in V1.
- V0 ``vllm/worker/enc_dec_model_runner.py`` ``profile_run`` (Mllama, Jan 2025): max_num_seqs dummy
  sequences, each with its encoder dummy data (``limit`` images of max_image_tiles tiles), all in one
  forward. V0 ``model_runner.py`` (decoder-only VLMs): max_num_seqs = min(max_num_seqs,
  max_num_batched_tokens // max multimodal tokens per prompt).
"""

from __future__ import annotations

from dataclasses import dataclass

V1_DEFAULT_LIMIT = 999
V0_DEFAULT_LIMIT = 1
LIMIT_SOURCE = "vllm/config MultiModalConfig.limit_per_prompt: default 1 per modality (V0), 999 (V1)"
BUDGET_SOURCE = ("vllm/multimodal/budget.py MultiModalBudget._get_max_items and "
                 "vllm/v1/core/encoder_cache_manager.py compute_mm_encoder_budget")
ENC_DEC_SOURCE = "vllm/worker/enc_dec_model_runner.py profile_run (V0): one image set per dummy sequence"

@dataclass(frozen=True)
class VisionDims:
    """The vision tower's widths and the largest image's sequence, as vLLM's profile run feeds it."""

    hidden: int  # d_img
    layers: int  # all encoder blocks (Mllama: local + global)
    heads: int
    intermediate: int
    gated: bool  # gate/up/down MLP (3 I live at down) or fc1/fc2 (2 I)
    image: tuple[int, int]  # (height, width) of the largest image the processor accepts
    seq_per_item: int  # encoder positions of that image, all tiles (class tokens and padding included)
    attn_seq: int  # the longest sequence one attention call sees (tile, whole image, or all tiles)
    tokens_per_item: int  # embeddings it becomes (vLLM's get_max_tokens_per_item; Mllama: cross states)
    text_hidden: int
    feature_layers: int = 0  # intermediate outputs kept to the end (Mllama: 5)
    merge: int = 1  # patches merged per side before the LLM
    projector_hidden: int = 0
    mask_per_item: bool = False  # Mllama: an additive (S x S) aspect-ratio mask per image (dtype)
    enc_dec: bool = False  # V0 encoder-decoder runner (Mllama)
    attention: str = "flash"  # "flash"/"sdpa" (memory-efficient, no S x S) | "eager" (scores kept)
    dtype_bytes: int = 2


def from_vision_spec(v, it, text_hidden: int, dtype_bytes: int = 2) -> VisionDims:
    """VisionDims from the project's VisionSpec (inspector/spec/vision.py), the ImageTokens of the largest
    image (inspector.image.rules.largest_image: the image layer sits above memory, so the caller gives
    it) and the LLM's hidden size."""
    e, p = v.encoder, v.projector
    side = (e.embed.image_size or 0) // e.embed.patch_size
    if e.tower == "mllama":  # every tile padded to max_tiles, class token per tile, positions padded to 8
        per_tile = side * side + 1
        per_tile += (8 - per_tile % 8) % 8
        seq = v.image.max_tiles * per_tile
        attn, tokens = seq, it.cross_states
    else:
        tiles = max(1, it.tiles)
        per_tile = it.patches // tiles + (1 if e.embed.class_token else 0)
        seq = tiles * per_tile
        attn = seq if e.tower in ("packed", "image") else per_tile
        tokens = it.tokens
    return VisionDims(
        hidden=e.hidden_size, layers=e.depth + e.global_depth, heads=e.num_heads, intermediate=e.intermediate_size,
        gated=e.mlp == "gated", image=(it.resized[0], it.resized[1]), seq_per_item=seq, attn_seq=attn,
        tokens_per_item=tokens, text_hidden=text_hidden, feature_layers=len(e.feature_layers),
        merge=max(1, p.merge_size), projector_hidden=p.hidden_size, mask_per_item=e.tower == "mllama",
        enc_dec=e.tower == "mllama", dtype_bytes=dtype_bytes,
    )


@dataclass(frozen=True)
class ItemCount:
    """Images in the profile run's dummy encoder batch, and the rule that gave the number."""

    items: int
    per_prompt: int
    rule: str


def profile_items(vd: VisionDims, engine: str, batch: tuple[int, int, int], limit: int | None) -> ItemCount:
    """Images vLLM encodes at once in its profile run; batch = (max_num_batched_tokens, max_num_seqs, max_model_len)."""
    tokens, seqs, max_len = batch
    t = max(1, vd.tokens_per_item)
    if engine == "vllm-v0":
        per_prompt = limit or V0_DEFAULT_LIMIT
        if vd.enc_dec:
            return ItemCount(seqs * per_prompt, per_prompt, f"{ENC_DEC_SOURCE}: {seqs} seqs x {per_prompt}")
        n = max(1, min(seqs, tokens // (t * per_prompt)))
        return ItemCount(n * per_prompt, per_prompt, f"vllm/worker/model_runner.py profile_run (V0): {n} seqs x {per_prompt}")
    limit = limit or V1_DEFAULT_LIMIT
    # compute budget max(max_num_encoder_input_tokens, t) and cache size max(encoder_cache_size, t): both
    # scheduler values default to max_num_batched_tokens, so the two are equal and the budget is either
    compute, cache = max(tokens, t), max(tokens, t)
    budget = min(compute, cache)
    per_prompt = max(1, min(limit, max_len // t))
    items = max(1, min(budget // t, seqs * per_prompt))
    rule = (f"{BUDGET_SOURCE}: min(encoder budget {budget:,} // {t:,} tokens, {seqs} seqs x {per_prompt} per prompt)"
            f"; limit {limit}")
    return ItemCount(items, per_prompt, rule)


@dataclass(frozen=True)
class EncoderPeak:
    """The encoder forward's peak over a dummy batch, and the merged embeddings the encoder cache keeps."""

    items: int
    positions: int  # encoder positions in the batch
    layer_peak: int  # the largest block's live bytes (attention or MLP)
    kept: int  # live through every block: kept intermediate features and Mllama's mask
    projector_peak: int
    cache: int  # merged embeddings kept in the encoder cache during the text dummy run

    @property
    def peak(self) -> int:
        return max(self.kept + self.layer_peak, self.projector_peak)


def encoder_peak(vd: VisionDims, items: int) -> EncoderPeak:
    """Bytes live at the encoder's peak for ``items`` largest images encoded in one call.

    Assumed (the allocator reuses everything else): per position, the residual and the block's normed
    input (d each); attention: q, k, v and the output (4 d), plus with eager attention heads x S x S
    scores and probabilities per sequence; MLP: fc1 and its activation (2 I; gated: gate/up and act,
    3 I); kept through the tower: the intermediate outputs that are concatenated at the end
    (Mllama's feature layers) and Mllama's (S x S) aspect-ratio mask per image.
    """
    b, n = vd.dtype_bytes, items * vd.seq_per_item
    d = vd.hidden
    attn = n * (2 * d + 4 * d) * b
    if vd.attention == "eager":
        attn += 2 * vd.heads * vd.attn_seq * vd.attn_seq * (n // vd.attn_seq) * b
    mlp = n * (2 * d + (3 if vd.gated else 2) * vd.intermediate) * b
    mask = items * vd.seq_per_item * vd.seq_per_item * b if vd.mask_per_item else 0
    kept = vd.feature_layers * n * d * b + mask
    cache = items * vd.tokens_per_item * vd.text_hidden * b
    merged = n // (vd.merge * vd.merge)
    projector = n * d * (1 + vd.feature_layers) * b + merged * vd.projector_hidden * b + cache
    return EncoderPeak(items, n, max(attn, mlp), kept, max(projector, 2 * mask), cache)
