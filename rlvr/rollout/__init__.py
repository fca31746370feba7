"""Rollout engines behind one protocol (`rlvr.rollout.base.Engine`), chosen by name.

Engines register lazily (``ENGINES.register_lazy``): importing this package imports no
engine, and choosing one imports only its own module.
"""
from rlvr.rollout.base import (ENGINES, Engine, RolloutBatch, SamplingParams, StaleWeightsError, WeightSource,
                               build_engine, concat_rollouts, register_engine)

__all__ = ["Engine", "RolloutBatch", "SamplingParams", "WeightSource", "StaleWeightsError", "ENGINES",
           "build_engine", "register_engine", "concat_rollouts"]
