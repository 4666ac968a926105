"""The tensor inventory of an audio tower and its projection into the LLM (component `audio_encoder`).

The tensors are the kind's data (inspector.spec.audio.AUDIO_KINDS): once before the layers, once per
layer, once after, then the projection; a clipped linear adds its four scalar bound buffers (stored,
not parameters) while the config's switch is on.
"""

from __future__ import annotations

from typing import Iterator

from inspector.inventory.entry import WeightEntry
from inspector.spec.audio import AUDIO_KINDS, AUDIO_PROJ, AudioSpec, AudioTensor

AUDIO = "audio_encoder"
CLIP = "Clip bounds (stored buffers)"
CLIP_BOUNDS = ("input_min", "input_max", "output_min", "output_max")


def _tensor(a: AudioSpec, t: AudioTensor, layer: int | None) -> Iterator[WeightEntry]:
    name = f"{a.prefix}.{t.template}".format(layer) if layer is not None else f"{a.prefix}.{t.template}"
    shape = tuple(a.dims[s] for s in t.shape)
    role = "audio." + t.template.replace("layers.{}.", "")
    if t.op != "clip":
        yield WeightEntry(name, shape, AUDIO, t.row, role, layer)
        return
    if a.clip:
        for bound in CLIP_BOUNDS:
            yield WeightEntry(f"{name}.{bound}", (), AUDIO, CLIP, f"{role}.{bound}", layer, parameter=False)
    yield WeightEntry(f"{name}.linear.weight", shape, AUDIO, t.row, role + ".weight", layer)


def audio_inventory(a: AudioSpec) -> list[WeightEntry]:
    """Every tensor of the audio tower, then the projection into the LLM (no bias, a weightless norm before it)."""
    kind = AUDIO_KINDS[a.kind]
    out = [e for t in kind.stem for e in _tensor(a, t, None)]
    for i in range(a.layers):
        out.extend(e for t in kind.layer for e in _tensor(a, t, i))
    out.extend(e for t in kind.head for e in _tensor(a, t, None))
    out.append(WeightEntry(f"{a.projector_prefix}.{kind.projector}.weight", (a.text_hidden, a.out_size), AUDIO,
                           AUDIO_PROJ, "audio.projector.weight"))
    return out
