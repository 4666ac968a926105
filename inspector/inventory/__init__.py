"""Every tensor a checkpoint of a spec holds, and the accounting of those tensors into rows and totals."""
