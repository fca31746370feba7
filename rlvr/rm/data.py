"""Where `rlvr-rm`'s pairs come from: preference sources (a registry) and the leak-free held-out split.

    file             data.path (+ data.eval_path) through `rlvr.preference.load_preferences`
    preference_task  the built-in task (`rlvr.data.preference_task.ranked_rows`, imported on use),
                     with its own held-out prompts

A source returns its training pairs and, when it has one, its own held-out set; without
one, `split_by_prompt` holds out ``data.eval_fraction`` of the *prompts* (all pairs of a
prompt land on the same side, so no prompt is in both). ``data.extra_eval`` adds named
eval files. The held-out set is always called ``heldout``.
"""
from __future__ import annotations

import collections
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from rlvr.data.chat import DataError
from rlvr.preference import PreferenceSet, load_preferences, prompt_key
from rlvr.registry import Registry

if TYPE_CHECKING:  # the config imports this module's registry to check data.source
    from rlvr.rm.config import RMDataConfig

__all__ = ["PREFERENCE_SOURCES", "register_preference_source", "PairSets", "load_pair_sets", "split_by_prompt"]

HELDOUT = "heldout"

Source = Callable[["RMDataConfig"], tuple[PreferenceSet, Optional[PreferenceSet]]]
PREFERENCE_SOURCES: Registry[Source] = Registry("data.source")
register_preference_source = PREFERENCE_SOURCES.register


@dataclass
class PairSets:
    train: PreferenceSet  # the pairs trained on (drops of the source counted here)
    evals: dict[str, PreferenceSet]  # name -> held-out pairs; "heldout" first
    notes: list[str] = field(default_factory=list)  # what the loading did, said out loud
    eval_prompts_in_train: int = 0  # held-out prompts that also occur in training (0 when split here)


def _load(path: str, cfg: RMDataConfig) -> PreferenceSet:
    return load_preferences(path, max_pairs_per_prompt=cfg.max_pairs_per_prompt, max_chars=cfg.max_chars,
                            format=cfg.format)


@register_preference_source("file")
def _file(cfg: RMDataConfig) -> tuple[PreferenceSet, Optional[PreferenceSet]]:
    return _load(str(cfg.path), cfg), (_load(cfg.eval_path, cfg) if cfg.eval_path else None)


@register_preference_source("preference_task")
def _builtin(cfg: RMDataConfig) -> tuple[PreferenceSet, Optional[PreferenceSet]]:
    """Training rows over the task's training prompts (labelled with ``length_bias``); held-out rows over its
    held-out prompts, always ranked by the true rule (so a length-hacked model shows in the held-out figures)."""
    try:
        from rlvr.data.preference_task import ranked_rows
    except ImportError as exc:
        raise DataError(f"data.source=preference_task: the built-in preference task is not available ({exc}); "
                        f"use data.source=file data.path=...") from None
    k, cap, chars = cfg.answers_per_prompt, cfg.max_pairs_per_prompt, cfg.max_chars
    train = ranked_rows(cfg.num_prompts, cfg.seed, answers_per_prompt=k, length_bias=cfg.length_bias, split="train")
    heldout = ranked_rows(cfg.num_eval_prompts, cfg.seed, answers_per_prompt=k, split="eval")
    return (load_preferences(train, max_pairs_per_prompt=cap, max_chars=chars, format=cfg.format),
            load_preferences(heldout, max_pairs_per_prompt=cap, max_chars=chars, format=cfg.format))


def _rank(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def split_by_prompt(pairs: PreferenceSet, fraction: float, seed: int) -> tuple[PreferenceSet, PreferenceSet]:
    """(train, held-out): ``fraction`` of the distinct prompts (at least one) and all their pairs held out."""
    keys = sorted({prompt_key(p) for p in pairs.pairs}, key=lambda k: _rank(k, seed))
    if len(keys) < 2:
        raise DataError(f"only {len(keys)} distinct prompt(s): a held-out split by prompt needs at least 2; "
                        f"pass data.eval_path")
    held = set(keys[:min(len(keys) - 1, max(1, round(fraction * len(keys))))])
    train = [p for p in pairs.pairs if prompt_key(p) not in held]
    heldout = [p for p in pairs.pairs if prompt_key(p) in held]
    return (PreferenceSet(train, pairs.dropped, pairs.rows_read, pairs.fields_seen, pairs.shapes),
            PreferenceSet(heldout, collections.Counter(), 0, pairs.fields_seen))


def load_pair_sets(cfg: RMDataConfig) -> PairSets:
    """The training pairs and every eval set, drops counted and the split said out loud."""
    source, own_eval = PREFERENCE_SOURCES.lookup(cfg.source)(cfg)
    notes = [f"{cfg.source}: {source.describe()}"]
    overlap = 0
    if own_eval is None:
        train, heldout = split_by_prompt(source, cfg.eval_fraction, cfg.seed)
        n_train = len({prompt_key(p) for p in train.pairs})
        n_held = len({prompt_key(p) for p in heldout.pairs})
        notes.append(f"held-out split by prompt ({cfg.eval_fraction:.0%}): {len(train)} training pairs "
                     f"({n_train} prompts), {len(heldout)} held-out pairs ({n_held} prompts)")
    else:
        train, heldout = source, own_eval
        overlap = len({prompt_key(p) for p in heldout.pairs} & {prompt_key(p) for p in train.pairs})
        notes.append(f"held-out {cfg.eval_path or cfg.source}: {heldout.describe()}"
                     + (f"; warning: {overlap} of its prompts also occur in training" if overlap else ""))
    evals = {HELDOUT: heldout}
    for name, path in cfg.extra_eval.items():
        if name == HELDOUT:
            raise DataError(f"data.extra_eval.{HELDOUT}: that name is the held-out set's; choose another name")
        evals[name] = _load(path, cfg)
        notes.append(f"eval set {name} ({path}): {evals[name].describe()}")
    return PairSets(train, evals, notes, overlap)
