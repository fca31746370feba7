"""Deterministic checks that turn a completion into a reward.

    >>> from verifiers import get_verifier
    >>> get_verifier("math").verify(completion="so \\boxed{1/2}", reference="0.5").reward
    1.0

Pure Python, CPU-only; nothing here imports torch or the trainer.
"""
from verifiers.base import BaseVerifier, OptionsError, Verdict, Verifier
from verifiers.registry import available_verifiers, get_verifier, register

__all__ = ["Verdict", "Verifier", "BaseVerifier", "OptionsError", "register", "get_verifier", "available_verifiers"]
