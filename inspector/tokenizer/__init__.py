"""Text to token ids and back: tokenizers from a directory, a GGUF file, the Hub or a package, and chat templates."""
