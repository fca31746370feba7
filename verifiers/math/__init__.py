"""Math answers: extraction, normalization and sympy equivalence (``get_verifier("math")``)."""
from verifiers.math.verifier import MathOptions, MathVerifier

__all__ = ["MathVerifier", "MathOptions"]
