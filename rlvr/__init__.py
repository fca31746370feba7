"""rlvr: critic-free GRPO trainer with verifiable rewards."""
__version__ = "0.1.0"
