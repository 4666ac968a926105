"""The tensor inventory of a whole model: every tensor a checkpoint of a spec should hold.

One list of `WeightEntry` records, in checkpoint order, drives `params` (grouped into rows by
inventory.accounting), `verify` (compared with checkpoint headers) and the reference model's
weight loading (looked up by role and layer). A VLM is its vision tower and projector, then its
LLM; Mllama's LLM has cross-attention layers in place of some decoder layers and a few more
embedding rows than its LM head (both facts of the ModelSpec).
"""

from __future__ import annotations


from inspector.inventory.audio import audio_inventory
from inspector.inventory.entry import EMBED, LM, WeightEntry
from inspector.inventory.text import text_inventory
from inspector.inventory.vision import vision_inventory
from inspector.spec.model import ModelSpec
from inspector.spec.wrappers import CROSS_NAMES

CROSS = "Cross-attention layer"


def _cross_layer(spec: ModelSpec, i: int) -> list[WeightEntry]:
    """One Mllama cross-attention decoder layer: tanh-gated cross-attention to the image, then a
    tanh-gated MLP; q/k RMSNorm over d_h."""
    t = spec.text
    d, w = t.hidden_size, t.intermediate_size
    shapes = {"x_attn_gate": (1,), "x_mlp_gate": (1,), "x_norm": (d,), "x_q": (t.q_dim, d), "x_k": (t.kv_dim, d),
              "x_v": (t.kv_dim, d), "x_o": (d, t.q_dim), "x_q_norm": (t.head_dim,), "x_k_norm": (t.head_dim,),
              "x_mlp_norm": (d,), "x_gate": (w, d), "x_up": (w, d), "x_down": (d, w)}
    out = []
    for role, shape in shapes.items():
        suffix = "" if role.endswith("_gate") and len(shape) == 1 and shape == (1,) else ".weight"
        name = (t.prefix + CROSS_NAMES[role] + suffix).format(i=i)
        out.append(WeightEntry(name, shape, LM, CROSS, role + suffix, i))
    return out


def _language_model(spec: ModelSpec) -> list[WeightEntry]:
    entries = text_inventory(spec.text)
    if not spec.cross_layers and not spec.embed_extra:
        return entries
    cross = set(spec.cross_layers)
    out: list[WeightEntry] = []
    done: set[int] = set()
    for e in entries:
        if e.layer in cross and e.component == LM:
            if e.layer not in done:
                out.extend(_cross_layer(spec, e.layer))
                done.add(e.layer)
            continue
        if e.group == EMBED and spec.embed_extra:
            e = e._replace(shape=(e.shape[0] + spec.embed_extra, *e.shape[1:]))
        out.append(e)
    return out


def inventory(spec: ModelSpec) -> list[WeightEntry]:
    """The whole model's inventory: vision tower and projector first, then the audio tower, then the LLM."""
    audio = audio_inventory(spec.audio) if spec.audio is not None else []
    if spec.vision is None:
        return audio + text_inventory(spec.text)
    return vision_inventory(spec.vision) + audio + _language_model(spec)
