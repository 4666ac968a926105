"""Replay ggml-alloc's graph allocator (ggml_gallocr, ggml/src/ggml-alloc.c) over a graph dumped by
tools/lcpp_bytes.cpp, for one CPU buffer (alignment 32, no maximum size): the compute buffer size that
llama.cpp's sched_reserve prints, byte for byte, if the replay is faithful.

    python tools/gallocr_sim.py fixtures/llamacpp/graphs/<name>.txt [--trace]

Standard library only; a research aid for issue 23, not part of the package.
"""

from __future__ import annotations

import re
import sys

ALIGN = 32
INPLACE_OPS = {"FILL", "SCALE", "DIAG_MASK_ZERO", "DIAG_MASK_INF", "ADD", "ADD_ID", "ADD1", "SUB", "MUL",
               "DIV", "SQR", "SQRT", "LOG", "UNARY", "ROPE", "ROPE_BACK", "SILU_BACK", "RMS_NORM",
               "RMS_NORM_BACK", "CLAMP", "SOFT_MAX", "SOFT_MAX_BACK"}
FLAG_INPUT, FLAG_OUTPUT = 1, 2
VIEW_ADDR = "--view-addr" in sys.argv


def pad(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


class T:
    __slots__ = ("ptr", "kind", "op", "name", "type", "ne", "nb", "nbytes", "flags", "ext", "vs", "srcs")

    def __init__(self, d: dict):
        self.ptr = d["ptr"]
        self.kind = d["kind"]
        self.op = d["op"]
        self.name = d["name"]
        self.type = d["type"]
        self.ne = d["ne"]
        self.nb = d["nb"]
        self.nbytes = d["nbytes"]
        self.flags = d["flags"]
        self.ext = d["ext"]
        self.vs = d.get("vs")
        self.srcs = d["srcs"]


LINE = re.compile(r"^(LEAF|NODE) (\d+) (.*)$")


def load(path: str):
    leafs, nodes, by_ptr, head, bytes_lines = [], [], {}, None, []
    opener = __import__("gzip").open if path.endswith(".gz") else open
    for line in opener(path, "rt"):
        line = line.rstrip("\n")
        if line.startswith("GRAPH"):
            head = line
            continue
        if line.startswith("BYTES"):
            bytes_lines.append(line)
            continue
        m = LINE.match(line)
        if not m:
            continue
        kind, rest = m.group(1), m.group(3)
        d = {"kind": kind}
        for key in ("op", "name", "type", "ne", "nb", "nbytes", "flags", "ext", "ptr", "vs"):
            mm = re.search(r"(?:^| )" + key + r"=(\S*)", rest)
            if mm:
                d[key] = mm.group(1)
        d["ne"] = tuple(int(x) for x in d["ne"].split(","))
        d["nb"] = tuple(int(x) for x in d["nb"].split(","))
        d["nbytes"] = int(d["nbytes"])
        d["flags"] = int(d["flags"])
        d["ext"] = d["ext"] == "1"
        d["srcs"] = [p for _, p in sorted((int(a), b) for a, b in re.findall(r" s(\d+)=(0x[0-9a-f]+)", rest))]
        t = T(d)
        by_ptr[t.ptr] = t
        (leafs if kind == "LEAF" else nodes).append(t)
    return head, bytes_lines, leafs, nodes, by_ptr


class DynTallocr:
    """ggml_dyn_tallocr with one chunk (the CPU buffer type has no maximum size)."""

    def __init__(self):
        self.blocks = [[0, 1 << 62]]  # [offset, size], sorted by offset; the last one is "endless"
        self.max_size = 0

    def alloc(self, size: int) -> int:
        size = pad(size)
        best, best_size = -1, None
        for i, (off, sz) in enumerate(self.blocks[:-1]):
            if sz >= size and (best_size is None or sz <= best_size):
                best, best_size = i, sz
        if best == -1:
            best = len(self.blocks) - 1  # the last block: always large enough in one endless chunk
        off = self.blocks[best][0]
        self.blocks[best][0] += size
        self.blocks[best][1] -= size
        if self.blocks[best][1] == 0:
            del self.blocks[best]
        self.max_size = max(self.max_size, off + size)
        return off

    def free(self, off: int, size: int) -> None:
        size = pad(size)
        for i, b in enumerate(self.blocks):
            if b[0] + b[1] == off:
                b[1] += size
                if i < len(self.blocks) - 1 and b[0] + b[1] == self.blocks[i + 1][0]:
                    b[1] += self.blocks[i + 1][1]
                    del self.blocks[i + 1]
                return
            if off + size == b[0]:
                b[0] = off
                b[1] += size
                if i > 0 and self.blocks[i - 1][0] + self.blocks[i - 1][1] == b[0]:
                    self.blocks[i - 1][1] += b[1]
                    del self.blocks[i]
                return
        j = 0
        while j < len(self.blocks) and self.blocks[j][0] < off:
            j += 1
        self.blocks.insert(j, [off, size])


PEAK = {}  # filled by simulate(): the live tensors when the buffer last grew


def simulate(leafs, nodes, by_ptr, trace=False) -> int:
    alloc = DynTallocr()
    st = {}  # ptr -> dict(allocated, addr, n_children, n_views)
    live = {}  # ptr -> (name, op, nbytes, addr): tensors holding buffer space
    PEAK.clear()

    def h(t):
        s = st.get(t.ptr)
        if s is None:
            s = st[t.ptr] = {"allocated": False, "addr": None, "n_children": 0, "n_views": 0}
        return s

    def is_allocated(t):
        return t.ext or h(t)["allocated"]

    def allocate(t):
        hn = h(t)
        if is_allocated(t) or t.vs is not None:
            return
        hn["allocated"] = True
        if t.op in INPLACE_OPS:
            for sp in t.srcs:
                p = by_ptr[sp]
                if not h(p)["allocated"]:
                    continue
                if p.flags & FLAG_OUTPUT or (p.vs is not None and by_ptr[p.vs].flags & FLAG_OUTPUT):
                    continue
                if p.type != t.type or p.ne != t.ne or p.nb != t.nb:
                    continue
                ph = h(p)
                if ph["n_children"] == 1 and ph["n_views"] == 0:
                    if p.vs is not None:
                        v = by_ptr[p.vs]
                        vh = h(v)
                        # view_src->data == parent->data holds trivially while reserving (both NULL);
                        # the view's own hash entry was never allocated, so its address is {0, 0}
                        # (QUIRK) unless --view-addr asks for the view source's address instead
                        if vh["n_views"] == 1 and vh["n_children"] == 0:
                            hn["addr"] = vh["addr"] if VIEW_ADDR else (ph["addr"] or 0)
                            ph["allocated"] = False
                            vh["allocated"] = False
                            live.pop(v.ptr, None)
                            live[t.ptr] = (t.name, t.op, t.nbytes, hn["addr"])
                            free_extra(t, v, vh)
                            if trace:
                                print(f"reuse view parent {p.name} ({v.name}) for {t.name}")
                            return
                    else:
                        hn["addr"] = ph["addr"]
                        ph["allocated"] = False
                        live.pop(p.ptr, None)
                        live[t.ptr] = (t.name, t.op, t.nbytes, hn["addr"])
                        free_extra(t, p, ph)
                        if trace:
                            print(f"reuse parent {p.name} for {t.name}")
                        return
        before = alloc.max_size
        hn["addr"] = alloc.alloc(t.nbytes)
        live[t.ptr] = (t.name, t.op, t.nbytes, hn["addr"])
        if alloc.max_size > before:
            PEAK.clear()
            PEAK.update({"at": t.name, "max_size": alloc.max_size, "live": sorted(live.values(), key=lambda x: x[3])})
        if trace:
            print(f"alloc {t.name} {t.nbytes} at {hn['addr']} max {alloc.max_size}")

    def free_extra(node, parent, ph):
        ps, ns = pad(parent.nbytes), pad(node.nbytes)
        if ps > ns:
            alloc.free(ph["addr"] + ns, ps - ns)

    def free(t):
        if t.flags & FLAG_OUTPUT:
            return
        hn = h(t)
        alloc.free(hn["addr"], t.nbytes)
        hn["allocated"] = False
        live.pop(t.ptr, None)
        if trace:
            print(f"free {t.name} {t.nbytes} at {hn['addr']}")

    for t in leafs:
        allocate(t)
    for t in nodes:
        if t.vs is not None and t.op != "NONE":
            h(by_ptr[t.vs])["n_views"] += 1
        if t.flags & FLAG_INPUT:
            allocate(t)
        for sp in t.srcs:
            s = by_ptr[sp]
            h(s)["n_children"] += 1
            if s.flags & FLAG_INPUT:
                allocate(s)
    for t in nodes:
        for sp in t.srcs:
            allocate(by_ptr[sp])
        allocate(t)
        for sp in t.srcs:
            p = by_ptr[sp]
            ph = h(p)
            ph["n_children"] -= 1
            if ph["n_children"] == 0 and ph["n_views"] == 0:
                if p.vs is not None:
                    v = by_ptr[p.vs]
                    vh = h(v)
                    vh["n_views"] -= 1
                    if vh["n_views"] == 0 and vh["n_children"] == 0 and vh["allocated"]:
                        free(v)
                elif ph["allocated"]:
                    free(p)
    return alloc.max_size


def main() -> None:
    path = sys.argv[1]
    head, bytes_lines, leafs, nodes, by_ptr = load(path)
    size = simulate(leafs, nodes, by_ptr, trace="--trace" in sys.argv)
    print(head)
    for b in bytes_lines:
        print(b)
    print(f"SIM compute={size} ({size / 1048576:.2f} MiB)")
    if "--peak" in sys.argv:
        print(f"peak reached allocating {PEAK['at']}; live tensors (name op bytes offset):")
        for name, op, nb, off in PEAK["live"]:
            print(f"  {name:40s} {op:12s} {nb:12d} {off:12d}")


if __name__ == "__main__":
    main()
