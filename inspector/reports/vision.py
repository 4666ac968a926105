"""Vision parts of the reports: the config table of VLMs (Table 2.1) and the image-token walkthrough.

Table 2.1 is that of *Implementations of Large Language Models*.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from inspector.image.rules import image_tokens, input_text, tokens_text
from inspector.image.tokens import ImageTokens, tile_tokens
from inspector.reports.render import Report, Section
from inspector.spec.image_facts import InternVLTiles
from inspector.spec.model import ModelSpec
from inspector.spec.vision_kinds import PROJECTORS
from inspector.units import Count, plural


def _yes(flag: bool, detail: str = "") -> str:
    return ("Yes" + (f" {detail}" if detail else "")) if flag else "No"


def _projector(v) -> str:
    """The projector kind's description, its dimension symbols filled in."""
    proj = v.projector
    m = proj.merge_size
    return PROJECTORS[proj.kind].description.format(
        **proj.dims, m=m, ratio=proj.downsample_ratio or (1 / m), taps=len(v.encoder.deepstack_layers) or len(v.encoder.feature_layers),
        deepstack=", ".join(str(i) for i in v.encoder.deepstack_layers))


def _positions_shape(v) -> str:
    enc = v.encoder
    emb = enc.embed
    lead = {"param": "1, ", "axes": "2, "}.get(emb.pos_layout, "")  # Gemma 4: an x row and a y row
    shape = f"({lead}{emb.num_positions}, {enc.hidden_size})"
    return shape + (" + 2D RoPE" if emb.rope else "") + (", gated, + tile embeddings" if emb.pos_layout == "gated_tiles" else "")


def vision_rows(spec: ModelSpec) -> list[tuple[str, Any]]:
    v = spec.vision
    enc = v.encoder
    emb = enc.embed
    return [
        ("d_img (image embedding dimension, vision hidden size)", enc.hidden_size),
        ("Class token", _yes(emb.class_token, "(1, 1, d_img)" if emb.class_layout == "param" else "(d_img,)")),
        ("Trainable position embeddings", _yes(emb.learned_pos, _positions_shape(v)) if emb.learned_pos
         else f"No ({enc.position_encoding})"),
        ("d (token embedding dimension, LLM hidden size)", spec.text.hidden_size),
        ("d_patch (patch size along height and width)", emb.patch_size),
        ("d_t_patch (temporal patch size)", emb.temporal_patch_size),
        ("n_merge (patches merged along each dimension)", v.projector.merge_size),
        ("Encoder repetitions (vision blocks)", enc.depth),
        ("Scaling residual (layer scale ls1/ls2)", _yes(enc.layer_scale)),
        ("vision tower", enc.kind),
        ("vision heads x head dim", f"{enc.num_heads} x {enc.head_dim}"),
        ("vision MLP size", enc.intermediate_size),
        ("vision norm", enc.norm_type),
        ("qkv bias / q,k norm", f"{'yes' if enc.qkv_bias else 'no'} / {'yes' if enc.qk_norm else 'no'}"),
        ("vision activation", enc.hidden_act),
        ("projector", _projector(v)),
        ("image input", input_text(v)),
        ("image tokens", tokens_text(v, spec.text.hidden_size)),
        *((("audio tower (and its projection into the LLM)", spec.audio.description),) if spec.audio else ()),
    ]


def vision_config_section(specs: list[ModelSpec]) -> Section:
    """Table 2.1, one column per model (text-only models get empty cells)."""
    vlm = next(s for s in specs if s.is_vlm)
    labels = [label for label, _ in vision_rows(vlm)]
    labels += [label for s in specs if s.is_vlm for label, _ in vision_rows(s) if label not in labels]
    per_model = [dict(vision_rows(s)) if s.is_vlm else {} for s in specs]
    rows = [[label, *[d.get(label, "") for d in per_model]] for label in labels]
    return Section("Vision encoder and projector (Table 2.1 of Implementations of Large Language Models)", ["Configuration", *[s.name for s in specs]], rows)


# `params --json`'s "vision" object keeps its first, flat layout: these keys in this order. The
# projector's fields carry a "projector_" prefix there; the first two rules' facts are top-level keys
# (their defaults below for the other rules), the other rules' facts are the "image" object.
_JSON_KEYS = (
    "kind description hidden_size depth num_heads head_dim intermediate_size patch_size temporal_patch_size "
    "in_channels merge_size out_hidden_size class_token learned_pos num_positions conv_bias qkv_bias qk_norm "
    "norm_type layer_scale hidden_act projector projector_in projector_norm_dim projector_hidden projector_act "
    "position_encoding tokens_rule image_size min_pixels max_pixels pixels_source min_tiles max_tiles "
    "use_thumbnail dynamic_tiles downsample_ratio norm_eps projector_norm_eps image_mean image_std image_token_id "
    "vision_start_token_id vision_end_token_id patch_embed class_layout pos_layout rope pre_norm post_norm "
    "edge_norm attention o_bias mlp mlp_bias mask_token head window_size fullatt_blocks deepstack_layers "
    "global_depth max_num_tiles num_aspect_ratios feature_layers tower class_at_end projector_norm projector_bias "
    "dims image tokens_per_tile"
).split()
_PROJECTOR_KEYS = {"kind": "projector", "in_size": "projector_in", "norm_size": "projector_norm_dim",
                   "hidden_size": "projector_hidden", "act": "projector_act", "norm": "projector_norm",
                   "bias": "projector_bias", "norm_eps": "projector_norm_eps"}
_TOP_FACT_DEFAULTS = dict(min_pixels=None, max_pixels=None, pixels_source="", min_tiles=1, max_tiles=1,
                          use_thumbnail=False, dynamic_tiles=False)


def vision_spec_json(spec: ModelSpec) -> dict[str, Any]:
    v = spec.vision
    facts = {f.name: getattr(v.image, f.name) for f in fields(v.image)}
    values: dict[str, Any] = {f.name: getattr(v.encoder, f.name) for f in fields(v.encoder)}
    values.update({f.name: getattr(v.encoder.embed, f.name) for f in fields(v.encoder.embed)})
    values.update({_PROJECTOR_KEYS.get(f.name, f.name): getattr(v.projector, f.name) for f in fields(v.projector)})
    values.update(_TOP_FACT_DEFAULTS, **(facts if v.image.top_level else {}))
    values.update(
        tokens_rule=v.image.rule, image_mean=v.image_mean, image_std=v.image_std, image_token_id=v.image_token_id,
        vision_start_token_id=v.vision_start_token_id, vision_end_token_id=v.vision_end_token_id,
        dims=dict(v.projector.dims),
        image={} if v.image.top_level else {k: list(x) if isinstance(x, tuple) else x for k, x in facts.items()},
        tokens_per_tile=tile_tokens(v) if isinstance(v.image, InternVLTiles) and v.encoder.embed.image_size else None)
    return {key: values[key] for key in _JSON_KEYS}


# --------------------------------------------------------------------------- image tokens


def tokens_json(spec: ModelSpec, it: ImageTokens) -> dict[str, Any]:
    return {
        "model": spec.name, "image_size": [it.height, it.width], "rule": it.rule,
        "resized": list(it.resized), "tiles": it.tiles, "thumbnail": it.thumbnail,
        "tile_grid": list(it.tile_grid) if it.tile_grid else None, "grid_thw": list(it.grid),
        "patches": it.patches, "tokens": it.tokens, "specials": dict(it.specials),
        **({"cross_attention_states": it.cross_states} if it.cross_states else {}),
        "steps": [asdict(s) for s in it.steps],
    }


def _marker_rows(it: ImageTokens) -> list[list[str]]:
    marks = [(t, n) for t, n in it.specials if n]
    if not marks:
        return []
    text = ", ".join(f"{t} x {n}" for t, n in marks)
    return [["Tokens", "marker tokens around them", "inserted by the processor", text]]


def tokens_report(specs: list[ModelSpec], sizes: list[tuple[int, int]]) -> Report:
    """One step table per (model, image size), and a summary when there are several."""
    from inspector.errors import InspectError

    sections: list[Section] = []
    payload: list[dict[str, Any]] = []
    summary: list[list[Any]] = []
    for spec in specs:
        if not spec.is_vlm:
            raise InspectError(f"{spec.name}: not a vision-language model (no vision_config), so no image tokens")
        for h, w in sizes:
            it = image_tokens(spec.vision, h, w, spec.text.hidden_size)
            sections.append(Section(
                f"{spec.name}: image {h}x{w} -> {plural(it.tokens, 'token')}",
                ["Step", "Quantity", "Rule", "Value"],
                [[s.step, s.quantity, s.formula, s.value] for s in it.steps] + _marker_rows(it),
            ))
            payload.append(tokens_json(spec, it))
            marks = sum(n for _, n in it.specials)
            summary.append([spec.name, f"{h}x{w}", f"{it.resized[0]}x{it.resized[1]}", Count(it.tiles),
                            Count(it.patches), Count(it.tokens), Count(marks)])
    if len(summary) > 1:
        sections.append(Section("Summary", ["Model", "Image (HxW)", "Resized", "Tiles", "Patches", "Tokens",
                                            "Marker tokens"], summary))
    return Report(sections, payload[0] if len(payload) == 1 else payload,
                  ["model", "image", "resized", "tiles", "patches", "tokens", "marker_tokens"], summary)
