"""Images to LLM tokens: the token arithmetic of every image-token rule, and the preprocessing to pixels."""
