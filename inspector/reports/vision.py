"""Vision parts of the reports: the config table of VLMs (Table 2.1) and the image-token walkthrough.

Table 2.1 is that of *Implementations of Large Language Models*.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from inspector.image.rules import image_tokens, input_text, tokens_text
from inspector.image.tokens import ImageTokens
from inspector.reports.render import Report, Section
from inspector.spec.model import ModelSpec
from inspector.spec.vision_kinds import PROJECTORS
from inspector.units import Count, plural


def _yes(flag: bool, detail: str = "") -> str:
    return ("Yes" + (f" {detail}" if detail else "")) if flag else "No"


def _projector(v) -> str:
    """The projector kind's description, its dimension symbols filled in."""
    m = v.merge_size
    return PROJECTORS[v.projector].description.format(
        **v.dims, m=m, ratio=v.downsample_ratio or (1 / m), taps=len(v.deepstack_layers) or len(v.feature_layers),
        deepstack=", ".join(str(i) for i in v.deepstack_layers))


def _positions_shape(v) -> str:
    shape = f"(1, {v.num_positions}, {v.hidden_size})" if v.pos_layout == "param" else \
        f"({v.num_positions}, {v.hidden_size})"
    return shape + (" + 2D RoPE" if v.rope else "") + (", gated, + tile embeddings" if v.pos_layout == "gated_tiles" else "")


def vision_rows(spec: ModelSpec) -> list[tuple[str, Any]]:
    v = spec.vision
    return [
        ("d_img (image embedding dimension, vision hidden size)", v.hidden_size),
        ("Class token", _yes(v.class_token, "(1, 1, d_img)" if v.class_layout == "param" else "(d_img,)")),
        ("Trainable position embeddings", _yes(v.learned_pos, _positions_shape(v)) if v.learned_pos
         else f"No ({v.position_encoding})"),
        ("d (token embedding dimension, LLM hidden size)", spec.text.hidden_size),
        ("d_patch (patch size along height and width)", v.patch_size),
        ("d_t_patch (temporal patch size)", v.temporal_patch_size),
        ("n_merge (patches merged along each dimension)", v.merge_size),
        ("Encoder repetitions (vision blocks)", v.depth),
        ("Scaling residual (layer scale ls1/ls2)", _yes(v.layer_scale)),
        ("vision tower", v.kind),
        ("vision heads x head dim", f"{v.num_heads} x {v.head_dim}"),
        ("vision MLP size", v.intermediate_size),
        ("vision norm", v.norm_type),
        ("qkv bias / q,k norm", f"{'yes' if v.qkv_bias else 'no'} / {'yes' if v.qk_norm else 'no'}"),
        ("vision activation", v.hidden_act),
        ("projector", _projector(v)),
        ("image input", input_text(v)),
        ("image tokens", tokens_text(v, spec.text.hidden_size)),
    ]


def vision_config_section(specs: list[ModelSpec]) -> Section:
    """Table 2.1, one column per model (text-only models get empty cells)."""
    vlm = next(s for s in specs if s.is_vlm)
    labels = [label for label, _ in vision_rows(vlm)]
    per_model = [dict(vision_rows(s)) if s.is_vlm else {} for s in specs]
    rows = [[label, *[d.get(label, "") for d in per_model]] for label in labels]
    return Section("Vision encoder and projector (Table 2.1 of Implementations of Large Language Models)", ["Configuration", *[s.name for s in specs]], rows)


def vision_spec_json(spec: ModelSpec) -> dict[str, Any]:
    v = spec.vision
    out = {f.name: getattr(v, f.name) for f in fields(v) if f.name != "names"}
    out.update(dims=dict(v.dims), image={k: list(x) if isinstance(x, tuple) else x for k, x in v.image.items()})
    out["tokens_per_tile"] = v.tokens_per_tile
    return out


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
