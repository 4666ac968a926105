"""Every bound on a count, a size, a thread pool or a wait that input could otherwise make as large as it likes.

The bounds are on what a config, an option, a file or a server could set. Each is far above any real model
or use, and each is stated in docs/architecture.md ("Limits"); tests/test_harden_limits.py checks that the
two agree. File sizes per kind of file are in inspector.files.LIMITS.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- config counts (spec/)

#: Routed experts per layer (largest public configs: 512, Qwen3-Next; 384, Kimi K2).
MAX_EXPERTS = 4096
#: Experts over all layers (MoE layers x experts; DeepSeek-V3: 58 x 256 = 14,848; Kimi K2: 60 x 384
#: = 23,040); the inventory lists each one (DeepSeek-V3's 46,000 tensors take 2 s).
MAX_EXPERT_INSTANCES = 65_536
#: Shared experts per layer (n_shared_experts; DeepSeek: 1 or 2).
MAX_SHARED_EXPERTS = 64
#: Multi-token-prediction (nextn) layers (DeepSeek-V3, GLM-4.5: 1).
MAX_MTP_LAYERS = 64

# --------------------------------------------------------------------------- options and inputs

#: Beams of beam search (--num-beams).
MAX_BEAMS = 64
#: Tokens of one traced or generated sequence (--seq-len, prompt plus new tokens).
MAX_SEQ_LEN = 1 << 20
#: Prompts run as one batch; a longer --prompts file runs in batches of this size (same results).
PROMPT_BATCH = 256
#: One line of `chat`'s stdin, in characters.
MAX_STDIN_LINE = 1 << 20

# --------------------------------------------------------------------------- output

#: Rows a table lists in the formats read by people (table, md); the rest are counted, and totals
#: are computed over all of them. The HTML page lists as many (reports/html_runs.py).
MAX_ROWS = 2_000
#: Rows a table lists in the formats read by scripts (json, csv): every tensor of the largest real
#: checkpoints (DeepSeek-V3 in fp8: about 92,000 with its scales).
MAX_DATA_ROWS = 100_000

# --------------------------------------------------------------------------- the Hub

#: Seconds one Hub request may take in all (INSPECT_HUB_DEADLINE overrides it).
HUB_DEADLINE_S = 300.0
#: Largest INSPECT_HUB_DEADLINE accepted.
HUB_DEADLINE_MAX_S = 86_400.0
#: A delegated download (huggingface_hub) gets the deadline plus its announced bytes at this rate.
HUB_MIN_RATE = 256 * 1024
#: Bytes of a model-info answer read to check its commit id.
HUB_INFO_MAX_BYTES = 64 << 20
