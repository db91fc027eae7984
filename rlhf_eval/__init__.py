"""rlhf-eval: evaluate RLHF models against their SFT baseline with honest confidence intervals."""

__version__ = "0.1.0"
