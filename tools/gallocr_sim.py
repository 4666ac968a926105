"""Replay ggml-alloc over a graph dumped by tools/lcpp_bytes.cpp: the compute buffer that llama.cpp's sched_reserve
prints, byte for byte, if the replay is faithful. The replay is the package's own
(inspector.memory.llamacpp_alloc.Allocator, one CPU buffer: alignment 32, no maximum size); this tool only reads the
dump and watches the replay.

    python tools/gallocr_sim.py fixtures/llamacpp/graphs/<name>.txt.gz [--trace] [--peak] [--view-addr]

--trace prints every allocation, in-place reuse and free; --peak the tensors alive when the buffer last grew;
--view-addr gives an op that reuses a view's parent the view source's address instead of llama.cpp's {0, 0}
while reserving (a what-if: the size stays the same on every dump here). A research aid for issue 23.
"""

from __future__ import annotations

import gzip
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from inspector.memory.llamacpp_alloc import FLAG_OUTPUT, Allocator  # noqa: E402

FLAGS = ("--trace", "--peak", "--view-addr")
LINE = re.compile(r"^(LEAF|NODE) (\d+) (.*)$")
KEYS = ("op", "name", "type", "ne", "nb", "nbytes", "flags", "ext", "ptr", "vs")
SRC = re.compile(r" s(\d+)=(0x[0-9a-f]+)")


class Tensor:
    """One dumped tensor, in the shape the package's Allocator reads (id = its pointer; vs and srcs: tensors)."""

    __slots__ = ("id", "kind", "op", "name", "type", "ne", "nb", "nbytes", "flags", "ext", "vs", "srcs")


class Dump:
    """A dumped graph: its GRAPH and BYTES lines, leafs and nodes in graph order."""

    def __init__(self):
        self.head, self.bytes_lines, self.leafs, self.nodes = None, [], [], []


def _tensor(kind: str, rest: str) -> tuple:
    """One LEAF/NODE line's fields; returns the tensor and its view source's and sources' pointers."""
    d = {}
    for key in KEYS:
        m = re.search(r"(?:^| )" + key + r"=(\S*)", rest)
        if m:
            d[key] = m.group(1)
    t = Tensor()
    t.kind, t.id, t.op, t.name, t.type = kind, d["ptr"], d["op"], d["name"], d["type"]
    t.ne = tuple(int(x) for x in d["ne"].split(","))
    t.nb = tuple(int(x) for x in d["nb"].split(","))
    t.nbytes, t.flags, t.ext = int(d["nbytes"]), int(d["flags"]), d["ext"] == "1"
    srcs = [p for _, p in sorted((int(i), p) for i, p in SRC.findall(rest))]
    return t, d.get("vs"), srcs


def load(path: str) -> Dump:
    """Read a dump (gzip or plain text); view sources and sources resolved by pointer once all are read."""
    dump, by_ptr, links = Dump(), {}, []
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("GRAPH"):
                dump.head = line
            elif line.startswith("BYTES"):
                dump.bytes_lines.append(line)
            elif m := LINE.match(line):
                t, vs, srcs = _tensor(m.group(1), m.group(3))
                by_ptr[t.id] = t
                links.append((t, vs, srcs))
                (dump.leafs if t.kind == "LEAF" else dump.nodes).append(t)
    for t, vs, srcs in links:
        t.vs = by_ptr[vs] if vs is not None else None
        t.srcs = [by_ptr[p] for p in srcs]
    return dump


class Replay(Allocator):
    """The package's allocator, watched: the tensors holding buffer space, the last growth, the --trace lines."""

    def __init__(self, trace: bool = False, view_addr: bool = False):
        super().__init__()
        self.trace, self.view_addr = trace, view_addr
        self.live = {}  # id -> (name, op, nbytes, offset), in the order they took their space
        self.peak = {}  # when the buffer last grew: "at" (the tensor), "max_size", "live" (sorted by offset)
        self._reused = False

    def _reuse(self, t) -> bool:
        owned = {p.id for p in t.srcs if p.id in self.allocated}
        if not super()._reuse(t):
            return False
        p = next(p for p in t.srcs if p.id in owned and p.id not in self.allocated)  # the source it took over
        owner = p.vs if p.vs is not None else p
        if p.vs is not None and self.view_addr:
            self.addr[t.id] = self.addr.get(owner.id)
        self.live.pop(owner.id, None)
        self.live[t.id] = (t.name, t.op, t.nbytes, self.addr[t.id])
        self._reused = True
        if self.trace:
            print(f"reuse view parent {p.name} ({owner.name}) for {t.name}" if p.vs is not None
                  else f"reuse parent {p.name} for {t.name}")
        return True

    def allocate(self, t) -> None:
        known, top, self._reused = t.id in self.allocated, self.mem.max_size, False
        super().allocate(t)
        if known or t.id not in self.allocated or self._reused:
            return
        self.live[t.id] = (t.name, t.op, t.nbytes, self.addr[t.id])
        if self.mem.max_size > top:
            self.peak = {"at": t.name, "max_size": self.mem.max_size,
                         "live": sorted(self.live.values(), key=lambda x: x[3])}
        if self.trace:
            print(f"alloc {t.name} {t.nbytes} at {self.addr[t.id]} max {self.mem.max_size}")

    def _free(self, t) -> None:
        super()._free(t)
        if t.flags & FLAG_OUTPUT:
            return
        self.live.pop(t.id, None)
        if self.trace:
            print(f"free {t.name} {t.nbytes} at {self.addr[t.id]}")


def _fail(msg: str) -> None:
    print(f"gallocr_sim.py: {msg}", file=sys.stderr)
    sys.exit(2)


def _args(argv: list) -> tuple:
    """(path, flags); a bad call: one line on stderr, exit 2."""
    paths = [a for a in argv if not a.startswith("--")]
    bad = [a for a in argv if a.startswith("--") and a not in FLAGS]
    if len(paths) != 1 or bad:
        _fail(f"expected one graph file and flags among {', '.join(FLAGS)}, got {' '.join(argv)!r}")
    return paths[0], set(argv) - set(paths)


def main() -> None:
    path, flags = _args(sys.argv[1:])
    try:
        dump = load(path)
    except (OSError, EOFError, KeyError, ValueError) as e:
        _fail(f"cannot read graph file {path}: {type(e).__name__}: {e}")
    r = Replay(trace="--trace" in flags, view_addr="--view-addr" in flags)
    size = r.run(dump)
    print(dump.head)
    for b in dump.bytes_lines:
        print(b)
    print(f"SIM compute={size} ({size / 1048576:.2f} MiB)")
    if "--peak" in flags and r.peak:
        print(f"peak reached allocating {r.peak['at']}; live tensors (name op bytes offset):")
        for name, op, nb, off in r.peak["live"]:
            print(f"  {name:40s} {op:12s} {nb:12d} {off:12d}")


if __name__ == "__main__":
    main()
