"""What a checkpoint holds, read from its headers (safetensors, GGUF, the Hub), and tensor data for the reference model."""
