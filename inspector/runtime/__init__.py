"""Running the reference model: preparing it, tracing a forward pass, generating, chatting, beam search."""
