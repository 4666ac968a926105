"""How fast: FLOPs of a forward, a decode step and training, and the roofline time of each on a GPU.

Pure arithmetic on the inventory and its accounting, no torch (the counts are checked against
torch's FlopCounterMode in the tests).
"""
