"""ggml-alloc replayed: the CPU compute buffer's size for a graph of tensors (best-fit free blocks, in-place reuse).

Pure arithmetic. Source: ggml/src/ggml-alloc.c of ggml-org/llama.cpp@0c1e57098 (the llama.cpp llama-cpp-python
0.3.36 vendors): ``ggml_dyn_tallocr`` (one chunk on CPU: free blocks sorted by offset, best fit among all but the
last block, the last block grows the buffer) and ``ggml_gallocr_alloc_graph_impl`` (leafs, then the graph inputs,
then each node after its sources, reusing a single-use source's memory for in-place ops, freeing sources whose
children are done). The graph is built by :mod:`inspector.memory.llamacpp_graph`; tensors are duck-typed (id, op,
type, ne, nb, nbytes, flags, ext, vs (view source), srcs). Checked through that module's tests.
"""

from __future__ import annotations

ALIGN = 32  # TENSOR_ALIGNMENT, ggml/src/ggml-impl.h: the CPU buffer type's alignment
# ggml_op_can_inplace (ggml/src/ggml-alloc.c): ops whose result may take a source's memory
INPLACE_OPS = frozenset({"FILL", "SCALE", "DIAG_MASK_ZERO", "DIAG_MASK_INF", "ADD", "ADD_ID", "ADD1", "SUB",
                         "MUL", "DIV", "SQR", "SQRT", "LOG", "UNARY", "ROPE", "ROPE_BACK", "SILU_BACK",
                         "RMS_NORM", "RMS_NORM_BACK", "CLAMP", "SOFT_MAX", "SOFT_MAX_BACK"})
FLAG_INPUT, FLAG_OUTPUT, FLAG_COMPUTE = 1, 2, 16  # GGML_TENSOR_FLAG_* (ggml/include/ggml.h)


def pad(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


class _Blocks:
    """ggml_dyn_tallocr with one chunk: free blocks sorted by offset, the last one endless."""

    def __init__(self):
        self.blocks = [[0, 1 << 62]]
        self.max_size = 0

    def alloc(self, size: int) -> int:
        """Best fit among the free blocks except the last; else the last (which grows the buffer)."""
        size = pad(size)
        best, best_size = len(self.blocks) - 1, None
        for i, (_, sz) in enumerate(self.blocks[:-1]):
            if sz >= size and (best_size is None or sz <= best_size):
                best, best_size = i, sz
        off = self.blocks[best][0]
        self.blocks[best][0] += size
        self.blocks[best][1] -= size
        if self.blocks[best][1] == 0:
            del self.blocks[best]
        self.max_size = max(self.max_size, off + size)
        return off

    def free(self, off: int, size: int) -> None:
        """Merge with a neighbouring free block, else insert sorted by address."""
        size = pad(size)
        for i, b in enumerate(self.blocks):
            if b[0] + b[1] == off:
                b[1] += size
                if i < len(self.blocks) - 1 and b[0] + b[1] == self.blocks[i + 1][0]:
                    b[1] += self.blocks[i + 1][1]
                    del self.blocks[i + 1]
                return
            if off + size == b[0]:
                b[0], b[1] = off, b[1] + size
                if i > 0 and self.blocks[i - 1][0] + self.blocks[i - 1][1] == b[0]:
                    self.blocks[i - 1][1] += b[1]
                    del self.blocks[i]
                return
        j = 0
        while j < len(self.blocks) and self.blocks[j][0] < off:
            j += 1
        self.blocks.insert(j, [off, size])


class Allocator:
    """ggml_gallocr_alloc_graph_impl over one graph: leafs, inputs, then nodes with in-place reuse and frees."""

    def __init__(self):
        self.mem = _Blocks()
        self.allocated, self.addr, self.children, self.views = set(), {}, {}, {}

    def _reuse(self, t) -> bool:
        """ggml_gallocr_allocate_node: take an owned, single-use source's memory for an in-place op."""
        for p in t.srcs:
            if p.id not in self.allocated or p.flags & FLAG_OUTPUT or (p.vs and p.vs.flags & FLAG_OUTPUT):
                continue
            if p.type != t.type or p.ne != t.ne or p.nb != t.nb:
                continue
            if self.children.get(p.id, 0) != 1 or self.views.get(p.id, 0) != 0:
                continue
            owner = p
            if p.vs is not None:
                v = p.vs
                if self.views.get(v.id, 0) != 1 or self.children.get(v.id, 0) != 0:
                    continue
                owner = v
                # the view's own (never set) address, 0: llama.cpp's behaviour while reserving
                self.addr[t.id] = self.addr.get(p.id) or 0
            else:
                self.addr[t.id] = self.addr[p.id]
            self.allocated.discard(p.id)
            self.allocated.discard(owner.id)
            extra = pad(owner.nbytes) - pad(t.nbytes)
            if extra > 0:
                self.mem.free(self.addr[owner.id] + pad(t.nbytes), extra)
            return True
        return False

    def allocate(self, t) -> None:
        if t.ext or t.id in self.allocated or t.vs is not None:
            return
        self.allocated.add(t.id)
        if t.op in INPLACE_OPS and self._reuse(t):
            return
        self.addr[t.id] = self.mem.alloc(t.nbytes)

    def _release(self, p) -> None:
        self.children[p.id] -= 1
        if self.children[p.id] or self.views.get(p.id, 0):
            return
        if p.vs is not None:
            v = p.vs
            self.views[v.id] -= 1
            if not self.views[v.id] and not self.children.get(v.id, 0) and v.id in self.allocated:
                self._free(v)
        elif p.id in self.allocated:
            self._free(p)

    def _free(self, t) -> None:
        if t.flags & FLAG_OUTPUT:
            return
        self.mem.free(self.addr[t.id], t.nbytes)
        self.allocated.discard(t.id)

    def run(self, g) -> int:
        """The buffer size: the highest end ever used (ggml_gallocr_get_buffer_size)."""
        for t in g.leafs:
            self.allocate(t)
        for t in g.nodes:
            if t.vs is not None and t.op != "NONE":
                self.views[t.vs.id] = self.views.get(t.vs.id, 0) + 1
            if t.flags & FLAG_INPUT:
                self.allocate(t)
            for p in t.srcs:
                self.children[p.id] = self.children.get(p.id, 0) + 1
                if p.flags & FLAG_INPUT:
                    self.allocate(p)
        for t in g.nodes:
            for p in t.srcs:
                self.allocate(p)
            self.allocate(t)
            for p in t.srcs:
                self._release(p)
        return self.mem.max_size
