"""The architecture as drawable data: flows of boxes, built from the spec and the inventory.

A `Flow` is one column of a figure, top to bottom: the model overview (Figure 1.1 of
*Implementations of Large Language Models*, with the vision column of Figure 2.1 for VLMs), one
decoder layer expanded, or one vision block (Figure 2.2). Every `Part` is a box holding its
tensors' shapes and parameter count, taken from the inventory entries (never recomputed), so a
figure's counted parts sum to the accounting total. Which boxes exist and where they sit follows
the entries and the spec's fields (attention kind, MLA, MoE sizes, norm placement, tied head);
nothing here branches on a model name. Pure data: inspector.reports.diagram draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from inspector.inventory.accounting import Accounting
from inspector.inventory.entry import ATTN, DENSE_MLP, EXPERTS, LM, MLP, ROUTER, ROUTER_BIAS, SHARED_EXPERT, WeightEntry
from inspector.reports.arch_text import (
    attention_ops, attention_title, ffn_short, layers_text, mlp_ops, mlp_title, moe_ops, moe_title, role_note,
    role_title,
)
from inspector.spec.norms import PLACEMENTS


@dataclass(frozen=True)
class Part:
    """One box. `params` per repetition; the figure counts it `repeat` times when `counted`."""

    key: str
    title: str
    lines: tuple[str, ...] = ()
    params: int = 0
    kind: str = "op"
    note: str = ""
    repeat: int = 1
    counted: bool = True
    href: str = ""
    out: str = ""  # the tensor shape leaving the box, written beside the arrow below it


@dataclass(frozen=True)
class Fan:
    """Routed experts fanned out: cards for the experts in `shown`, an ellipsis for the rest."""

    key: str
    count: int
    per_expert: int
    lines: tuple[str, ...]  # one expert's tensors
    shown: tuple[int, ...]
    repeat: int  # experts × layers


@dataclass(frozen=True)
class Group:
    """A container box (attention, MLP, experts): rows of parts, operation lines, an expert fan."""

    key: str
    title: str
    kind: str
    params: int  # per repetition, counted parameters only
    items: tuple[Union[tuple[Part, ...], str, Fan], ...]


@dataclass(frozen=True)
class Sum:
    start: int  # index of the step the residual branch leaves before
    label: str


@dataclass(frozen=True)
class Parallel:
    branches: tuple[tuple[Union[Part, Group], ...], ...]


@dataclass(frozen=True)
class Note:
    text: str


Step = Union[Part, Group, Sum, Parallel, Note]


@dataclass(frozen=True)
class Flow:
    key: str
    title: str
    steps: tuple[Step, ...]
    repeat: int = 1


@dataclass(frozen=True)
class LayerKind:
    """Layers whose tensors have the same names and shapes; `entries` are the first one's."""

    layers: tuple[int, ...]
    entries: tuple[WeightEntry, ...]

    @property
    def params(self) -> int:
        return sum(e.numel for e in self.entries if e.stored and e.parameter)


def layer_kinds(entries: list[WeightEntry], component: str = LM) -> list[LayerKind]:
    """Layers of `component` grouped by their tensors (routed experts compared by expert 0)."""
    by_layer: dict[int, list[WeightEntry]] = {}
    for e in entries:
        if e.component == component and e.layer is not None:
            by_layer.setdefault(e.layer, []).append(e)
    kinds: dict[tuple, list[int]] = {}
    for i in sorted(by_layer):
        kinds.setdefault(tuple((e.group, e.role, e.shape) for e in by_layer[i] if not e.expert), []).append(i)
    return [LayerKind(tuple(layers), tuple(by_layer[layers[0]])) for layers in kinds.values()]


def base_role(e: WeightEntry) -> str:
    """'q.weight' -> 'q'; 'vision.norm1.bias' -> 'norm1'."""
    return e.role.removeprefix("vision.").split(".")[0]


def short_name(name: str) -> str:
    """'model.layers.3.self_attn.q_proj.weight' -> 'q_proj.weight'; 'mlp1.1.weight' -> 'mlp1.1.weight'."""
    parts = name.split(".")
    keep = 3 if len(parts) >= 3 and parts[-2].isdigit() else 2
    return ".".join(parts[-keep:])


def _line(e: WeightEntry) -> str:
    return f"{short_name(e.name)} {tuple(e.shape)}"


def part_of(key: str, title: str, entries: list[WeightEntry], kind: str, repeat: int = 1, note: str = "",
            **kw) -> Part:
    counted = all(e.stored and e.parameter for e in entries)
    if not all(e.parameter for e in entries):
        note = note or "a stored buffer, not a parameter"
    return Part(key, title, tuple(_line(e) for e in entries), sum(e.numel for e in entries), kind, note,
                repeat, counted, **kw)


def _by_role(entries) -> dict[str, list[WeightEntry]]:
    out: dict[str, list[WeightEntry]] = {}
    for e in entries:
        out.setdefault(base_role(e), []).append(e)
    return out


# Rows of the attention and MLP boxes by role, top to bottom (None: the operation lines).
# Roles not listed get a row of their own at the bottom, so no tensor is ever left out.
ATTN_LAYOUT = (("q_a", "q", "k", "v", "qkv", "kv_a"), ("q_a_norm", "kv_a_norm", "q_norm", "k_norm"),
               ("q_b", "kv_b"), None, ("sinks",), ("o", "proj"))
MLP_LAYOUT = (("gate", "up", "gate_up", "fc1"), None, ("down", "fc2"))
SHARED_ROLES = ("shared_gate", "shared_up", "shared_down", "shared_gate_up")


def _arrange(parts: dict[str, Part], layout, ops: tuple[str, ...]) -> tuple:
    items: list = []
    for row in layout:
        if row is None:
            items.extend(ops)
            continue
        found = tuple(parts[r] for r in row if r in parts)
        if found:
            items.append(found)
    placed = {r for row in layout if row for r in row}
    items.extend((p,) for r, p in parts.items() if r not in placed)
    return tuple(items)


def _parts(spec, entries, kind: str, repeat: int, prefix: str) -> dict[str, Part]:
    return {r: part_of(f"{prefix}.{r}", role_title(r), es, kind, repeat, role_note(spec, r))
            for r, es in _by_role(entries).items()}


def attention_group(spec, entries: list[WeightEntry], layers: tuple[int, ...], key: str) -> Group:
    """`spec` is a TextSpec or an EncoderSpec: both give heads and head_dim for the notes."""
    parts = _parts(spec, entries, "attn", len(layers), key)
    return Group(key, attention_title(spec), "attn", _counted(entries),
                 _arrange(parts, ATTN_LAYOUT, attention_ops(spec, layers)))


def mlp_group(spec, entries: list[WeightEntry], layers: tuple[int, ...], key: str) -> Group:
    parts = _parts(spec, entries, "mlp", len(layers), key)
    return Group(key, mlp_title(spec, entries), "mlp", _counted(entries), _arrange(parts, MLP_LAYOUT, mlp_ops(spec)))


def moe_group(t, entries: list[WeightEntry], layers: tuple[int, ...], key: str) -> Group:
    """Router (and its buffer), the routed experts fanned out, the shared expert(s)."""
    m, r = t.moe, len(layers)
    routed = [e for e in entries if e.group == EXPERTS]
    first = [e for e in routed if not e.expert]
    fused = all(e.expert is None for e in routed)
    lines = tuple(f"{short_name(e.name)}[e] {tuple(e.shape[1:])}" if fused else _line(e) for e in first)
    per_expert = sum(e.numel for e in routed) // m.num_experts
    count = m.num_experts
    shown = tuple(range(count)) if count <= 4 else (0, 1, 2, count - 1)
    roles = _by_role(e for e in entries if e.group in (ROUTER, ROUTER_BIAS))
    items: list = [tuple(part_of(f"{key}.{k}", role_title(k), es, "router", r, role_note(t, k))
                         for k, es in roles.items())]
    items.append(Fan(f"{key}.experts", count, per_expert, lines, shown, count * r))
    shared = [e for e in entries if e.group == SHARED_EXPERT]
    if shared:
        body = [e for e in shared if base_role(e) in SHARED_ROLES]
        rest = [e for e in shared if base_role(e) not in SHARED_ROLES]
        row = [part_of(f"{key}.shared", role_title("shared"), body, "mlp", r, role_note(t, "shared"))]
        row += [part_of(f"{key}.{k}", role_title(k), es, "router", r, role_note(t, k))
                for k, es in _by_role(rest).items()]
        items.append(tuple(row))
    items.extend(moe_ops(t, fused))
    return Group(key, moe_title(t), "moe", _counted(entries), tuple(items))


def _counted(entries) -> int:
    return sum(e.numel for e in entries if e.stored and e.parameter)


# --------------------------------------------------------------------------- a layer


# Parts that belong to the attention half of a layer: the norms a placement puts after attention
# (inspector.spec.norms), a vision block's layer scale.
AFTER_ATTENTION = (*dict.fromkeys(role for p in PLACEMENTS.values() for role in p.after_attn), "ls1")


def _segments(entries) -> list[tuple[str, list[WeightEntry]]]:
    """Consecutive entries by container: 'attn', 'ffn', or one norm/scale role each."""
    out: list[tuple[str, list[WeightEntry]]] = []
    for e in entries:
        if e.group == ATTN or e.group.startswith(ATTN + " ("):  # (Gemma 3n / 4: rows per attention shape)
            key = "attn"
        elif e.group in (MLP, DENSE_MLP, ROUTER, ROUTER_BIAS, EXPERTS, SHARED_EXPERT) or e.group.startswith(MLP + " ("):
            key = "ffn"
        else:
            key = base_role(e)
        if out and out[-1][0] == key:
            out[-1][1].append(e)
        else:
            out.append((key, [e]))
    return out


def layer_flow(spec, kind: LayerKind, key: str, title: str, io: str, parallel: bool = False) -> Flow:
    """One layer (decoder or vision block) expanded: norms, attention, feed-forward, residual adds."""
    r, boxes = len(kind.layers), []
    for name, es in _segments(kind.entries):
        if name == "attn":
            boxes.append((name, attention_group(spec, es, kind.layers, f"{key}.attn")))
        elif name == "ffn" and any(e.group == EXPERTS for e in es):
            boxes.append((name, moe_group(spec, es, kind.layers, f"{key}.moe")))
        elif name == "ffn":
            boxes.append((name, mlp_group(spec, es, kind.layers, f"{key}.mlp")))
        else:
            boxes.append((name, part_of(f"{key}.{name}", es[0].group, es, "norm", r)))
    x, out = Note(f"x {io}"), Note(f"to the next layer {io}")
    if parallel:
        return Flow(key, title, (x, *_parallel_steps(boxes), out), r)
    split = next((i + 1 for i, (name, _) in enumerate(boxes) if name == "attn"), len(boxes))
    while split < len(boxes) and boxes[split][0] in AFTER_ATTENTION:
        split += 1
    first, second = [b for _, b in boxes[:split]], [b for _, b in boxes[split:]]
    steps: list[Step] = [x, *first, Sum(1, "residual: x + attention")]
    steps += [*second, Sum(len(steps), "residual: x + feed-forward"), out]
    return Flow(key, title, tuple(steps), r)


def _parallel_steps(boxes) -> tuple[Step, ...]:
    """GPT-J/NeoX/Phi-2: attention and MLP both read the (same or own) norm of x; one residual add."""
    one_norm = len(boxes) == 3 and boxes[0][0] not in ("attn", "ffn")
    shared, rest = [b for _, b in boxes[:1]] if one_norm else [], boxes[1:] if one_norm else boxes
    cut = next((i + 1 for i, (name, _) in enumerate(rest) if name == "attn"), len(rest))
    branches = (tuple(b for _, b in rest[:cut]), tuple(b for _, b in rest[cut:]))
    return (*shared, Parallel(branches), Sum(1, "residual: x + attention + MLP"))


def decoder_flows(acc: Accounting, kinds: list[LayerKind], anchor: str) -> list[Flow]:
    t = acc.spec.text
    flows = []
    for i, kind in enumerate(kinds):
        title = f"Decoder layer × {len(kind.layers)} ({layers_text(kind.layers)})"
        flows.append(layer_flow(t, kind, f"{anchor}-layer{i}", title, f"(b, n, {t.hidden_size})",
                                parallel=t.placement.parallel))
    return flows


def layer_box(kind: LayerKind, key: str, title: str, summary: str, io: str, href: str) -> Part:
    """The × N box of an overview column, linking to the expanded layer; `io` its input shape."""
    lines = (layers_text(kind.layers), summary, f"{io} → {io}")
    return Part(key, f"{title} × {len(kind.layers)}", lines, kind.params, "layer", "", len(kind.layers),
                True, href)


def ffn_summary(spec, kind: LayerKind) -> str:
    return ffn_short(spec, any(e.group == EXPERTS for e in kind.entries))
