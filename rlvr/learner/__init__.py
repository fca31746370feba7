"""The learner: backends that own the policy (`base.Backend`), memory-light log-probs, the update."""
from rlvr.learner.base import BACKENDS, Backend, register_backend
from rlvr.learner.logprobs import token_log_probs, token_logprobs
from rlvr.learner.update import Learner, autocast_dtype, total_optimizer_steps

__all__ = ["Backend", "BACKENDS", "register_backend", "build_backend", "open_backend", "Learner", "token_log_probs",
           "token_logprobs", "autocast_dtype", "total_optimizer_steps"]


def build_backend(name: str, model, trainer, algo, dtype: str = "fp32", master_dtype: str = "fp32") -> Backend:
    """The backend registered as ``trainer.backend``, owning ``model`` for this run's optimizer steps.

    Every backend is called as ``cls(model, optim, total_optimizer_steps, trainer=..., dtype=...,
    master_dtype=...)``.
    """
    return open_backend(name, model, trainer, total_optimizer_steps(algo, trainer), dtype, master_dtype)


def open_backend(name: str, model, trainer, total_steps: int, dtype: str = "fp32", master_dtype: str = "fp32") -> Backend:
    """`build_backend` for a stage that counts its own optimizer steps (`rlvr-rm`, `rlvr-dpo`); ``trainer`` is
    its trainer block (``optim``, ``micro_batch_size``, ``deepspeed``)."""
    return BACKENDS.lookup(name)(model, trainer.optim, total_steps, trainer=trainer, dtype=dtype,
                                 master_dtype=master_dtype)
