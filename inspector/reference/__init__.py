"""The reference model in torch: decoder LLMs, vision towers and VLMs built from a spec, filled by inventory name."""
