"""Will it fit? Memory of serving (a vLLM-style paged KV cache) and fine-tuning (full with ZeRO, LoRA, QLoRA).

Pure arithmetic on the inventory and its accounting, no torch: `gpus` (the devices), `modules`
(the inventory seen as the modules transformers builds), `quant` (bytes of a weight at a dtype),
`activations`, `serving`, `training`, `lora`, and `fit` (verdicts and what would make it fit).
"""
