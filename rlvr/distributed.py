"""Data parallelism across the ranks of a torchrun job: who this process is, and the collectives the loop needs.

``torchrun --nproc-per-node N -m rlvr.train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR/PORT`` set; `start` joins them into one
process group (gloo on CPU, nccl on CUDA, each rank on ``cuda:LOCAL_RANK``) with the
collective timeout ``trainer.deepspeed.timeout_s``. One process without that environment
is rank 0 of 1 and nothing here touches ``torch.distributed``: every helper below is then
the identity (no gather, no barrier), so a single-process run behaves as it always did.

What the loop relies on:

- `share`: rank r's contiguous slice of a global list (equal slices; `rlvr.config_checks.validate`
  refuses a prompt count that the world size does not divide).
- `padded_share`, `map_in_shares`: equal-length shares of a list the world size need not divide
  (the short shares repeat an item, marked as padding), so every rank makes the same number of
  forward passes (ZeRO-3), and a function mapped over the shares with every rank's results
  joined in item order (`rlvr-rm`'s and `rlvr-dpo`'s scoring of whole pair sets).
- `decided_by_main`: rank 0 alone answers a question (which checkpoint to resume, where
  the run directory is) and every rank gets the same answer, or the same user error.
- `combine_metrics` (pure) and `reduce_metrics`: per-rank metrics into one row: counts
  summed, means weighted by what they average over (completions, loss tokens, completion
  tokens), maxima and minima reduced, timings the slowest rank's.
- `concat_results`: per-rank dataclasses of tensors (reward results) joined in rank order,
  so metrics that need every value (a standard deviation, verdict counts) are computed on
  the global batch exactly.
- `sum_over_ranks`: a tensor of statistics summed over ranks, the same bits on every rank (PPO's
  whitening, value-loss normalizer, metrics and KL controller over every rank's rows).
- `all_true`: a lockstep vote (the transformers engine under ZeRO-3: every rank keeps
  joining the collective forwards until every rank's rows have finished).

A rank that dies or hangs leaves the others blocked in a collective; after the timeout
they raise and exit non-zero (see docs/distributed.md, "Failure modes").
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import gc
import os
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, TypeVar

import torch
import torch.distributed as dist

__all__ = ["World", "launched_world", "start", "init_process_group", "is_distributed", "barrier", "broadcast_object",
           "all_gather_objects", "all_reduce_sum", "sum_over_ranks", "all_true", "main_first", "decided_by_main",
           "is_collective_failure", "exit_on_collective_failure", "share", "padded_share", "map_in_shares",
           "gather_cat",
           "combine_metrics",
           "reduce_metrics", "concat_results", "collective_forward", "QUIET_HYDRA_OVERRIDES"]

T = TypeVar("T")

# Appended to the command line of ranks > 0: Hydra then creates no output directory, no .hydra/
# and no <job>.log of its own (rank 0's run directory, broadcast, is every rank's).
QUIET_HYDRA_OVERRIDES = ("hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=none",
                         "hydra/hydra_logging=none")


@dataclass(frozen=True)
class World:
    rank: int = 0  # this process's global rank
    size: int = 1  # number of ranks
    local_rank: int = 0  # rank on this node (the CUDA device index)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_world(env: Optional[Mapping[str, str]] = None) -> World:
    """Where this process sits according to torchrun's environment (``os.environ`` unless given; rank 0 of 1
    without it)."""
    env = os.environ if env is None else env
    return World(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _destroy() -> None:
    if dist.is_initialized():
        gc.collect()  # finalizers that still use the group first (a closed vLLM engine destroys its own groups)
        dist.destroy_process_group()


def init_process_group(timeout_s: int) -> None:
    """Join the group torchrun describes; without its environment, a 1-rank group on a free local port.

    gloo on CPU, nccl on CUDA (each rank on cuda:LOCAL_RANK). A no-op when already initialized.
    A group made here is destroyed at exit: left to interpreter teardown, gloo's threads
    sometimes abort a finished rank ("terminate called without an active exception").
    """
    if dist.is_initialized():
        return
    atexit.register(_destroy)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout, backend = timedelta(seconds=timeout_s), "nccl" if cuda else "gloo"
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        dist.init_process_group(backend, timeout=timeout)
        return
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_WORLD_SIZE", "1"),
                       ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", str(_free_port()))):
        os.environ.setdefault(key, value)
    dist.init_process_group(backend, rank=0, world_size=1, timeout=timeout)


def start(timeout_s: int) -> World:
    """The launched world, its process group joined when it has more than one rank."""
    world = launched_world()
    if world.size > 1:
        init_process_group(timeout_s)
    return world


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _device() -> torch.device:
    """Where collective tensors live: the current CUDA device under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (bounded by the process group's timeout)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: T, src: int = 0) -> T:
    """``src``'s ``obj`` on every rank (picklable objects)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_device())
    return box[0]


def all_gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(value: float) -> float:
    """The sum of ``value`` over ranks (float64)."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return float(t.item())


def sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``t`` over ranks (a new tensor on ``t``'s device and dtype; ``t`` itself on one rank).
    Every rank gets the same bits, so a statistic computed from it is identical on every rank."""
    if not is_distributed():
        return t
    out = t.detach().to(_device(), torch.float64).clone()
    dist.all_reduce(out)
    return out.to(t.device, t.dtype)


def all_true(flag: bool) -> bool:
    """True when ``flag`` is True on every rank (a vote every rank must join)."""
    if not is_distributed():
        return flag
    t = torch.tensor([0 if flag else 1], dtype=torch.int32, device=_device())
    dist.all_reduce(t)
    return int(t.item()) == 0


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, then the others (which find what it built in the cache).

    For artifacts built into a shared cache (the tiny model, a warm-up, a GGUF import):
    transformers' ``save_pretrained`` writes nothing on ranks > 0 once the process group
    exists, so those ranks must never build one themselves. Across nodes the cache
    (``model.cache_dir``, ``$RLVR_CACHE``) must therefore be on a shared filesystem, and the
    block must end within the collective timeout.
    """
    first = not is_distributed() or dist.get_rank() == 0
    if not first:
        barrier()
    yield
    if first:
        barrier()


def decided_by_main(fn: Callable[[], T], errors: tuple[type[BaseException], ...]) -> T:
    """``fn()`` run on rank 0 only; its result, or the same error (one of ``errors``), on every rank."""
    outcome: tuple[Optional[T], Optional[BaseException]] = (None, None)
    if not is_distributed() or dist.get_rank() == 0:
        try:
            outcome = (fn(), None)
        except errors as exc:
            if not is_distributed():
                raise
            outcome = (None, exc)
    result, error = broadcast_object(outcome)
    if error is not None:
        raise error
    return result  # type: ignore[return-value]


def is_collective_failure(exc: BaseException) -> bool:
    """A collective that failed because another rank died, hung or timed out (gloo, NCCL, the store)."""
    names = {c.__name__ for c in type(exc).__mro__}
    text = str(exc)
    return bool(names & {"DistError", "DistBackendError", "DistNetworkError", "DistStoreError"}) or any(
        marker in text for marker in ("gloo/transport", "Connection reset by peer", "NCCL", "Timed out waiting"))


@contextlib.contextmanager
def exit_on_collective_failure(timeout_s: int) -> Iterator[None]:
    """With several ranks, a failed collective ends this rank with one ``error:`` line and exit status 1."""
    try:
        yield
    except RuntimeError as exc:
        if not is_collective_failure(exc):
            raise
        rank = os.environ.get("RANK", "?")
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        print(f"error: rank {rank}: a collective failed ({first}); another rank died, hangs or was stopped "
              f"(trainer.deepspeed.timeout_s={timeout_s}); the first rank to fail says why in its own output",
              file=sys.stderr, flush=True)
        sys.exit(1)


def share(n: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous slice of ``n`` items (``n`` divisible by ``world``)."""
    if n % world:
        raise ValueError(f"{n} items cannot be split into {world} equal shares")
    k = n // world
    return range(rank * k, (rank + 1) * k)


def padded_share(items: Sequence[T], rank: int, world: int) -> tuple[list[T], int]:
    """(rank ``rank``'s contiguous share of ``ceil(n / world)`` items, how many of them are real): a short
    share is filled up with copies of the list's last item, so every rank's share has the same length."""
    if not items:
        return [], 0
    size = -(-len(items) // world)
    mine = list(items[rank * size:(rank + 1) * size])
    real = len(mine)
    return mine + [items[-1]] * (size - real), real


def map_in_shares(fn: Callable[[list[T]], Sequence[torch.Tensor]], items: Sequence[T]) -> tuple[torch.Tensor, ...]:
    """``fn`` (a list -> per-item tensors along dim 0) over this rank's `padded_share` of ``items``; every
    rank's real rows joined in item order, on every rank. Every rank calls ``fn`` once on a share of the
    same length (a collective forward stays in step). One process: ``fn(items)``."""
    if not is_distributed():
        return tuple(fn(list(items)))
    mine, real = padded_share(items, dist.get_rank(), dist.get_world_size())
    return gather_cat(*(t[:real] for t in fn(mine)))


def gather_cat(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each of ``tensors`` (rows along dim 0) with every rank's rows joined in rank order, on every rank (CPU)."""
    gathered = all_gather_objects(tuple(t.detach().cpu() for t in tensors))
    return tuple(torch.cat([g[i] for g in gathered]) for i in range(len(tensors)))


def collective_forward(module: torch.nn.Module) -> bool:
    """True when a forward through ``module`` is a collective (ZeRO-3 partitioned parameters, several ranks)."""
    return is_distributed() and any(hasattr(p, "ds_id") for p in module.parameters())


# ---- metrics across ranks ------------------------------------------------------------
# How one metric combines over ranks; each rank also reports weights: "completions" (its rows),
# "loss_tokens" (tokens under the loss mask), "completion_tokens" (real completion tokens).
_LOSS_TOKEN_MEANS = frozenset({"kl", "entropy", "clip_frac/low", "clip_frac/high"})


def _weighted(weight: str) -> Callable[[list[float], list[dict[str, float]]], float]:
    def mean(values: list[float], weights: list[dict[str, float]]) -> float:
        w = [float(x.get(weight, 1.0)) for x in weights]
        total = sum(w)
        return sum(v * x for v, x in zip(values, w)) / total if total > 0 else sum(values) / len(values)
    return mean


_RULES: list[tuple[Callable[[str], bool], Callable[[list[float], list[dict[str, float]]], float]]] = [
    (lambda k: k.startswith("time/"), lambda v, w: max(v)),  # the slowest rank sets the pace
    (lambda k: k.startswith("memory/"), lambda v, w: max(v)),  # memory/gpu_peak_gib: the fullest rank's
    (lambda k: k.endswith(("/max", "_max")), lambda v, w: max(v)),  # completion_len/max, rollout/is_ratio_max
    (lambda k: k.endswith(("/min", "_min")), lambda v, w: min(v)),
    (lambda k: k.startswith("verdict/") or k == "groups_trained", lambda v, w: sum(v)),
    (lambda k: k in _LOSS_TOKEN_MEANS, _weighted("loss_tokens")),
    (lambda k: k.startswith("rollout/"), _weighted("completion_tokens")),
    (lambda k: True, _weighted("completions")),  # per-completion means; equal on every rank: the same value
]


def combine_metrics(rows: Sequence[dict[str, Any]], weights: Sequence[dict[str, float]]) -> dict[str, Any]:
    """One metrics row from every rank's ``rows[r]`` and ``weights[r]`` (see the rules above).

    A key some ranks lack is combined over the ranks that have it; a value that is not a
    number (None, text) is rank 0's.
    """
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out: dict[str, Any] = {}
    for key in keys:
        have = [(row[key], w) for row, w in zip(rows, weights) if key in row]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in have):
            out[key] = have[0][0]
            continue
        rule = next(fn for match, fn in _RULES if match(key))
        value = rule([float(v) for v, _ in have], [w for _, w in have])
        integral = all(isinstance(v, int) for v, _ in have) and float(value).is_integer()
        out[key] = int(value) if integral else value  # counts stay integers
    return out


def reduce_metrics(metrics: dict[str, Any], weights: dict[str, float]) -> tuple[dict[str, Any], dict[str, float]]:
    """(the combined metrics row, the weights summed over ranks); the identity on one rank."""
    if not is_distributed():
        return metrics, dict(weights)
    gathered = all_gather_objects((metrics, weights))
    rows, ws = [g[0] for g in gathered], [g[1] for g in gathered]
    return combine_metrics(rows, ws), {k: sum(float(w.get(k, 0.0)) for w in ws) for k in weights}


def _concat(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(values)
    if isinstance(first, list):
        return [x for v in values for x in v]
    if isinstance(first, dict):
        return {k: _concat([v[k] for v in values]) for k in first}
    return first  # a label or a frozenset: the same on every rank


def concat_results(items: Sequence[T]) -> T:
    """Dataclasses of per-row tensors/lists (and dicts of them) joined in order; other fields are the first's."""
    if len(items) == 1:
        return items[0]
    fields = {f.name: _concat([getattr(x, f.name) for x in items]) for f in dataclasses.fields(items[0])}
    return dataclasses.replace(items[0], **fields)  # type: ignore[type-var]
