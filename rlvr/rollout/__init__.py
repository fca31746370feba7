"""Rollout engines behind one protocol (`rlvr.rollout.base.Engine`), chosen by name."""
from rlvr.rollout import hf  # noqa: F401  (registers "hf")
from rlvr.rollout.base import ENGINES, Engine, RolloutBatch, SamplingParams, build_engine, register_engine

__all__ = ["Engine", "RolloutBatch", "SamplingParams", "ENGINES", "build_engine", "register_engine"]
