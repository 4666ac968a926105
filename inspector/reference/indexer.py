"""DeepSeek Sparse Attention's lightning indexer (DeepSeek-V3.2): which cached keys each query may attend to.

Per layer the indexer has its own small attention: `h_I` query heads of `d_I` drawn from MLA's normalised
q latent (wq_b), one key of `d_I` per token drawn from x (wk, then a LayerNorm with a bias), and a weight
per head and query (weights_proj). The first qk_rope_head_dim dimensions of its queries and keys are rotated
as rotate-half pairs (MLA's own RoPE part uses interleaved pairs). Its score of key s for query t is
sum_j w[t, j] / sqrt(h_I) * ReLU(q[t, j] . k[s] / sqrt(d_I)), with the causal (and padding) mask added;
each query keeps its `index_topk` best keys, and MLA's attention mask hides every other key. The indexer's
keys are cached beside MLA's latent: d_I more numbers per token and layer.

transformers' DeepseekV32Indexer computes the same in bf16/fp32 (DeepSeek's own kernels add a Hadamard
rotation, which leaves the dot products unchanged, and fp8 scores); its scores are computed in float32 here too.
"""

from __future__ import annotations

import torch
from torch import nn

from inspector.reference.layers import KVCache, LayerNorm, Tap, apply_rope, linear, note
from inspector.spec.text import TextSpec

# Inventory role -> parameter path under the attention module (layers.{i}.attn.indexer.*).
INDEXER_PATHS = {"indexer_wq_b": "indexer.wq_b", "indexer_wk": "indexer.wk", "indexer_k_norm": "indexer.k_norm",
                 "indexer_weights_proj": "indexer.weights_proj"}
INDEXER_NORM_EPS = 1e-6  # transformers DeepseekV32Indexer: nn.LayerNorm(index_head_dim, eps=1e-6)


def rotate_half_tables(cos: torch.Tensor, sin: torch.Tensor, interleaved: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of interleaved pairs (theta_0, theta_0, theta_1, ...) laid out for rotate-half pairs
    (theta_0, theta_1, ..., theta_0, theta_1, ...); tables already in that layout are returned as they are."""
    if not interleaved:
        return cos, sin
    c, s = cos[..., ::2], sin[..., ::2]  # (b, n, d_rope/2): one angle per pair
    return torch.cat((c, c), dim=-1), torch.cat((s, s), dim=-1)


class LightningIndexer(nn.Module):
    """x (b, n, d) and the q latent (b, n, q_lora_rank) -> which of the t+n keys each query keeps (b, 1, n, t+n)."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        ix, d = spec.indexer, spec.hidden_size
        self.layer, self.h, self.d, self.topk = layer, ix.heads, ix.head_dim, ix.topk
        self.interleaved = spec.rope_interleaved
        self.wq_b = linear(spec, spec.mla.q_lora_rank, ix.heads * ix.head_dim, False, "Step 5",
                           "indexer queries from the q latent: (b, n, h_I d_I)")
        self.wk = linear(spec, d, ix.head_dim, False, "Step 5", "indexer key from x: (b, n, d_I), one for all heads")
        self.k_norm = note(LayerNorm(ix.head_dim, INDEXER_NORM_EPS), "Step 5", "LayerNorm of the indexer key")
        self.weights_proj = linear(spec, d, ix.heads, False, "Step 5", "weight of each indexer head: (b, n, h_I)")
        self.keys = Tap("KV cache", "indexer key cache after appending: (b, t+n, d_I), beside the MLA latent")
        self.scores = Tap("Mask", "index scores sum_j w_j / sqrt(h_I) ReLU(q_j . k / sqrt(d_I)) + causal mask: "
                          "(b, n, t+n), float32")
        self.kept = Tap("Mask", f"keys each query keeps: its top {ix.topk} index scores (b, 1, n, t+n)")
        note(self, "Step 5", "lightning indexer (DeepSeek Sparse Attention): keys kept per query")

    def forward(self, x, q_latent, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        cos, sin = rotate_half_tables(*ropes[""], self.interleaved)  # (b or 1, n, d_rope) each
        q = self.wq_b(q_latent).view(b, n, self.h, self.d).transpose(1, 2)  # (b, h_I, n, d_I)
        q = apply_rope(q, cos, sin).transpose(1, 2)  # (b, n, h_I, d_I): the first d_rope dims rotated
        k = apply_rope(self.k_norm(self.wk(x))[:, None], cos, sin)[:, 0]  # (b, n, d_I)
        if cache is not None:
            k = cache.update_index(self.layer, k)  # (b, t+n, d_I)
        k = self.keys(k)
        scores = torch.relu(q.float() @ k.float().transpose(-2, -1)[:, None] * self.d**-0.5)  # (b, n, h_I, t+n)
        w = self.weights_proj(x).float() * self.h**-0.5  # (b, n, h_I)
        index = self.scores((w[..., None, :] @ scores)[..., 0, :] + mask[:, 0])  # (b, n, t+n)
        best = index.topk(min(self.topk, index.shape[-1]), dim=-1).indices  # (b, n, k)
        kept = torch.zeros(index.shape, dtype=torch.bool, device=index.device).scatter(-1, best, True)
        return self.kept(kept[:, None])  # (b, 1, n, t+n)
