"""Prototype: rebuild llama.cpp's reserve graph from hyperparameters (llama and gemma3 only) and replay
ggml-alloc over it (tools/gallocr_sim.py), to test that "graph from config + allocator replay" gives
llama.cpp's compute buffer byte for byte. Research aid for issue 23, not the package's predictor.

    python tools/graph_proto.py            # every recorded run it covers, against the exact bytes
    python tools/graph_proto.py --diff GRAPH.txt.gz   # compare node by node with a dumped graph

Covered: every recorded setting: KV streams (n_seq_max, kv_unified), K/V types (quantized K or V add
the Hadamard rotation nodes; f32 K/V with flash attention add casts to f16), flash attention on or off,
n_ctx / n_batch / n_ubatch, swa_full. Views of the KV cache are built only where they feed a computed
tensor (the cache's own reshapes for several streams hold no compute memory and are left out).
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gallocr_sim as G  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SZ = {"f32": 4, "f16": 2, "bf16": 2, "i32": 4, "i64": 8, "q8_0": 1, "q4_0": 1, "q5_1": 1, "iq4_nl": 1}  # quantized: caches only, never allocated
HP = {
    "smollm2-135m-instruct-q4_1": dict(arch="llama", n_layer=30, E=576, n_ff=1536, n_head=9, n_head_kv=3,
                                       hd=64, n_vocab=49152, n_swa=0, swa_pattern=0),
    "gemma-3-270m-q4_k_m": dict(arch="gemma3", n_layer=18, E=640, n_ff=2048, n_head=4, n_head_kv=1, hd=256,
                                n_vocab=262144, n_swa=512, swa_pattern=6),
}


def pad(n, a):
    return (n + a - 1) // a * a


class Builder:
    def __init__(self):
        self.leafs, self.nodes, self.by_ptr = [], [], {}
        self.ids = itertools.count(1)

    def _t(self, kind, op, name, typ, ne, nb=None, flags=16, ext=False, vs=None, srcs=()):
        ne = tuple(list(ne) + [1] * (4 - len(ne)))
        if nb is None:
            s = SZ[typ]
            nb = (s, s * ne[0], s * ne[0] * ne[1], s * ne[0] * ne[1] * ne[2])
        nbytes = SZ[typ] * ne[0] * ne[1] * ne[2] * ne[3]
        if vs is not None:
            ext = vs.ext
        t = G.T({"ptr": hex(next(self.ids)), "kind": kind, "op": op, "name": name, "type": typ, "ne": ne,
                 "nb": tuple(nb), "nbytes": nbytes, "flags": flags, "ext": ext,
                 "vs": vs.ptr if vs is not None else None, "srcs": [s.ptr for s in srcs]})
        self.by_ptr[t.ptr] = t
        (self.leafs if kind == "LEAF" else self.nodes).append(t)
        return t

    def leaf(self, name, typ, ne, flags=1, ext=False):
        return self._t("LEAF", "NONE", name, typ, ne, flags=flags if not ext else 0, ext=ext)

    def op(self, op, name, typ, ne, *srcs, flags=16):
        return self._t("NODE", op, name, typ, ne, flags=flags, srcs=srcs)

    def view(self, op, name, src, ne, nb=None):
        root = self.by_ptr[src.vs] if src.vs is not None else src
        return self._t("NODE", op, name, src.type, ne, nb=nb, vs=root, srcs=(src,))

    def permute(self, name, src, axes):
        # ggml_permute(a, axes): dim i of a goes to position axes[i]
        ne, nb = [0] * 4, [0] * 4
        for i, ax in enumerate(axes):
            ne[ax], nb[ax] = src.ne[i], src.nb[i]
        return self.view("PERMUTE", name, src, ne, nb)


def build(model: str, s: dict) -> Builder:
    hp = HP[model]
    E, T, hd, H, Hkv = hp["E"], None, hp["hd"], hp["n_head"], hp["n_head_kv"]
    n_ctx_pad = pad(s["n_ctx"], 256)
    if not s["kv_unified"]:
        n_ctx_pad = pad(n_ctx_pad // s["n_seq_max"], 256) * s["n_seq_max"]
    n_batch = min(s["n_ctx"], s["n_batch"])
    T = min(n_batch, s["n_ubatch"], n_ctx_pad)
    fa = s["fa"] in ("on", "auto")
    kvd = Hkv * hd
    base = n_ctx_pad if s["kv_unified"] else n_ctx_pad // s["n_seq_max"]  # cells per stream
    caches = {"base": base}
    if hp["n_swa"]:
        caches["swa"] = base if s["swa_full"] else pad(min(base, hp["n_swa"] * (s["n_seq_max"] if s["kv_unified"] else 1) + T), 256)
    mtype = "f16" if fa else "f32"
    b = Builder()
    quant = lambda t: t not in ("f16", "bf16", "f32")  # noqa: E731
    rot_k, rot_v = quant(s["type_k"]) and hd % 64 == 0, quant(s["type_v"]) and hd % 64 == 0
    nrot_k = 64
    while hd % (nrot_k * 2) == 0:
        nrot_k *= 2
    ns = 1 if s["kv_unified"] else s["n_seq_max"]  # KV streams
    inp_tokens = b.leaf("inp_tokens", "i32", (T,))
    b.leaf("inp_embd", "f32", (E, T))
    order = ["swa", "base"] if hp["n_swa"] else ["base"]
    inputs, rots = {}, {}
    for n, c in enumerate(order):
        kr = b.leaf("attn_inp_k_rot", "f32", (nrot_k, nrot_k)) if rot_k else None
        if n == 0:
            inp_pos = b.leaf("inp_pos", "i32", (T,))
        vr = b.leaf("attn_inp_v_rot", "f32", (64, 64)) if rot_v else None
        rots[c] = (kr, vr)
        k_idxs = b.leaf("attn_inp_k_idxs", "i64", (T,))
        v_idxs = b.leaf("attn_inp_v_idxs", "i64", (T * kvd,) if not fa else (T,))
        mask = b.leaf("attn_inp_kq_mask", mtype, (caches[c], T // ns, 1, ns))
        inputs[c] = (k_idxs, v_idxs, mask)
    b.leaf("out_ids", "i32", (T,))
    def had(x, rot):  # llama_mul_mat_hadamard: reshape to rows of the rotation size, MUL_MAT, reshape back
        n = rot.ne[0]
        numel = x.ne[0] * x.ne[1] * x.ne[2] * x.ne[3]
        r = b.view("RESHAPE", "(reshaped)", x, (n, numel // n))
        m = b.op("MUL_MAT", "hadamard", "f32", (n, numel // n), rot, r)
        return b.view("RESHAPE", "(reshaped)", m, x.ne)

    w = b.leaf("weight", "f32", (1,), ext=True)  # all weights: external, never allocated
    ck = {il: b.leaf(f"cache_k_l{il}", s["type_k"], (kvd, 1), ext=True) for il in range(hp["n_layer"])}
    cv = {il: b.leaf(f"cache_v_l{il}", s["type_v"], (kvd, 1), ext=True) for il in range(hp["n_layer"])}

    cur = b.op("GET_ROWS", "embd", "f32", (E, T), w, inp_tokens)
    if hp["arch"] == "gemma3":
        cur = b.op("SCALE", "inp_scaled", "f32", (E, T), cur)
    inpL = cur
    out_ids = next(t for t in b.leafs if t.name == "out_ids")
    for il in range(hp["n_layer"]):
        last = il == hp["n_layer"] - 1
        is_swa = hp["n_swa"] and (il + 1) % hp["swa_pattern"] != 0
        c = "swa" if is_swa else "base"
        n_kv = caches[c]
        k_idxs, v_idxs, mask = inputs[c]
        kr, vr = rots[c]
        x = b.op("RMS_NORM", f"norm-{il}", "f32", (E, T), inpL)
        x = b.op("MUL", f"attn_norm-{il}", "f32", (E, T), x, w)
        q = b.op("MUL_MAT", f"Qcur-{il}", "f32", (H * hd, T), w, x)
        q = b.view("RESHAPE", f"Qcur-{il}", q, (hd, H, T))
        if hp["arch"] == "gemma3":
            q = b.op("RMS_NORM", f"norm-{il}", "f32", (hd, H, T), q)
            q = b.op("MUL", f"Qcur_normed-{il}", "f32", (hd, H, T), q, w)
            q = b.op("ROPE", f"Qcur-{il}", "f32", (hd, H, T), q, inp_pos)
            q = b.op("SCALE", f"node_q_{il}", "f32", (hd, H, T), q)
            if kr:
                q = had(q, kr)
            k = b.op("MUL_MAT", f"Kcur-{il}", "f32", (kvd, T), w, x)
            k = b.view("RESHAPE", f"Kcur-{il}", k, (hd, Hkv, T))
            k = b.op("RMS_NORM", f"norm-{il}", "f32", (hd, Hkv, T), k)
            k = b.op("MUL", f"Kcur_normed-{il}", "f32", (hd, Hkv, T), k, w)
            k = b.op("ROPE", f"Kcur-{il}", "f32", (hd, Hkv, T), k, inp_pos)
            if kr:
                k = had(k, kr)
            v = b.op("MUL_MAT", f"Vcur-{il}", "f32", (kvd, T), w, x)
            v = b.view("RESHAPE", f"Vcur-{il}", v, (hd, Hkv, T))
            if vr:
                v = had(v, vr)
        else:
            q = b.op("ROPE", f"Qcur-{il}", "f32", (hd, H, T), q, inp_pos)
            if kr:
                q = had(q, kr)
            v = b.op("MUL_MAT", f"Vcur-{il}", "f32", (kvd, T), w, x)
            v = b.view("RESHAPE", f"Vcur-{il}", v, (hd, Hkv, T))
            if vr:
                v = had(v, vr)
            k = b.op("MUL_MAT", f"Kcur-{il}", "f32", (kvd, T), w, x)
            k = b.view("RESHAPE", f"Kcur-{il}", k, (hd, Hkv, T))
            k = b.op("ROPE", f"Kcur-{il}", "f32", (hd, Hkv, T), k, inp_pos)
            if kr:
                k = had(k, kr)
        kv_ = b.view("VIEW", f"Kcur-{il} (view)", k, (kvd, T))
        kc = ck[il]
        kset = b.view("SET_ROWS", "k set_rows", kc, (kvd, n_kv))
        kset.srcs = [kv_.ptr, k_idxs.ptr, kc.ptr]
        if not fa:
            v1 = b.view("RESHAPE", "Vcur (reshaped)", v, (kvd, T))
            v2 = b.view("RESHAPE", "Vcur (reshaped) (reshaped)", v1, (1, kvd * T))
            cvr = b.view("RESHAPE", "cache_v (reshaped)", cv[il], (1, kvd * n_kv))
            vset = b.view("SET_ROWS", "v set_rows", cv[il], (1, kvd * n_kv))
            vset.srcs = [v2.ptr, v_idxs.ptr, cvr.ptr]
            vv = b.view("VIEW", "cache_v (view)", cv[il], (n_kv, Hkv, hd))
            vp = b.permute("cache_v (permuted)", vv, (0, 2, 1, 3))
            kvw = b.view("VIEW", "cache_k (view)", kc, (hd, Hkv, n_kv))
            kp = b.permute("cache_k (permuted)", kvw, (0, 2, 1, 3))
            qv = b.view("VIEW", "q (view)", q, (hd, H, T // ns, ns))
            qp = b.permute("q (permuted)", qv, (0, 2, 1, 3))
            kq = b.op("MUL_MAT", f"kq-{il}", "f32", (n_kv, T // ns, H, ns), kp, qp)
            kq = b.op("SOFT_MAX", f"kq_soft_max-{il}", "f32", (n_kv, T // ns, H, ns), kq, mask)
            kqv = b.op("MUL_MAT", f"kqv-{il}", "f32", (hd, T // ns, H, ns), vp, kq)
            kqvp = b.permute("kqv (permuted)", kqv, (0, 2, 1, 3))
            o = b.op("CONT", f"kqv_out-{il}", "f32", (H * hd, T), kqvp)
        else:
            v1 = b.view("VIEW", f"Vcur-{il} (view)", v, (kvd, T))
            vset = b.view("SET_ROWS", "v set_rows", cv[il], (kvd, n_kv))
            vset.srcs = [v1.ptr, v_idxs.ptr, cv[il].ptr]
            qv = b.view("VIEW", "q (view)", q, (hd, H, T // ns, ns))
            qp = b.permute("q (permuted)", qv, (0, 2, 1, 3))
            kvw = b.view("VIEW", "cache_k (view)", kc, (hd, Hkv, n_kv))
            kp = b.permute("cache_k (permuted)", kvw, (0, 2, 1, 3))
            if s["type_k"] == "f32":  # flash attention casts an f32 cache to f16 (ggml_cast: CPY into itself)
                kp = b.op("CPY", "k (copy)", "f16", kp.ne, kp)
                kp.srcs.append(kp.ptr)
            vv = b.view("VIEW", "cache_v (view)", cv[il], (hd, Hkv, n_kv))
            vp = b.permute("cache_v (permuted)", vv, (0, 2, 1, 3))
            if s["type_v"] == "f32":
                vp = b.op("CPY", "v (copy)", "f16", vp.ne, vp)
                vp.srcs.append(vp.ptr)
            fo = b.op("FLASH_ATTN_EXT", f"fa-{il}", "f32", (hd, H, T // ns, ns), qp, kp, vp, mask)
            o = b.view("RESHAPE", f"kqv_out-{il}", fo, (H * hd, T))
            if vr:
                o = had(o, vr)
        a = b.op("MUL_MAT", f"attn_out-{il}", "f32", (E, T), w, o)
        # the last layer keeps only the output rows (all of them while reserving): two GET_ROWS
        if last:
            a = b.op("GET_ROWS", "out rows", "f32", (E, T), a, out_ids)
        if hp["arch"] == "gemma3":
            a = b.op("RMS_NORM", f"norm-{il}", "f32", (E, T), a)
            a = b.op("MUL", f"attn_post_norm-{il}", "f32", (E, T), a, w)
        if last:
            inpL = b.op("GET_ROWS", "inp rows", "f32", (E, T), inpL, out_ids)
        sa = b.op("ADD", f"ffn_inp-{il}", "f32", (E, T), a, inpL)
        x = b.op("RMS_NORM", f"norm-{il}", "f32", (E, T), sa)
        x = b.op("MUL", f"ffn_norm-{il}", "f32", (E, T), x, w)
        g = b.op("MUL_MAT", f"ffn_gate-{il}", "f32", (hp["n_ff"], T), w, x)
        u = b.op("MUL_MAT", f"ffn_up-{il}", "f32", (hp["n_ff"], T), w, x)
        x = b.op("GLU", f"ffn_glu-{il}", "f32", (hp["n_ff"], T), g, u)
        x = b.op("MUL_MAT", f"ffn_out-{il}", "f32", (E, T), w, x)
        if hp["arch"] == "gemma3":
            x = b.op("RMS_NORM", "norm", "f32", (E, T), x)
            x = b.op("MUL", f"ffn_post_norm-{il}", "f32", (E, T), x, w)
        inpL = b.op("ADD", f"l_out-{il}", "f32", (E, T), x, sa)
    x = b.op("RMS_NORM", "norm", "f32", (E, T), inpL)
    x = b.op("MUL", "result_norm", "f32", (E, T), x, w, flags=18)
    b.op("MUL_MAT", "result_output", "f32", (hp["n_vocab"], T), w, x, flags=18)
    return b


def covered(s: dict) -> bool:
    return True


def main() -> None:
    if "--diff" in sys.argv:
        path = sys.argv[sys.argv.index("--diff") + 1]
        _, _, leafs, nodes, _ = G.load(path)
        name = os.path.basename(path).split(".txt")[0]
        rec = json.load(open(os.path.join(ROOT, "fixtures", "llamacpp", "runs", name + ".json")))
        b = build(rec["model"], rec["settings"])
        for i, (x, y) in enumerate(itertools.zip_longest(nodes, b.nodes)):
            if x is None or y is None or (x.op, x.type, x.ne, x.flags & 2, x.ext) != (y.op, y.type, y.ne, y.flags & 2, y.ext) \
                    or (not x.ext and x.nb != y.nb):
                print(i, x and (x.op, x.name, x.type, x.ne, x.nb), "|", y and (y.op, y.name, y.type, y.ne, y.nb))
                break
        else:
            print(f"{len(nodes)} nodes: same ops, types, shapes and strides")
        return
    ok = bad = 0
    for p in sorted(glob.glob(os.path.join(ROOT, "fixtures", "llamacpp", "runs", "*.json"))):
        rec = json.load(open(p))
        s = rec["settings"]
        eb = rec.get("exact_bytes", {}).get("by_buffer_type", {}).get("CPU", {})
        if not covered(s) or "compute" not in eb:
            continue
        b = build(rec["model"], s)
        size = G.simulate(b.leafs, b.nodes, b.by_ptr)
        good = size == eb["compute"]
        ok += good
        bad += not good
        if not good or "-v" in sys.argv:
            print(f"{os.path.basename(p)[:-5]}: built {size} recorded {eb['compute']} {'OK' if good else 'DIFF'}")
    print(f"graph built from hyperparameters + replay = exact compute bytes: {ok} equal, {bad} differ")


if __name__ == "__main__":
    main()
