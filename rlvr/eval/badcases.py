"""Bad cases: the completions worth a person's (or a rule's) second look, kept in every run.

``RUN_DIR/badcases.jsonl`` gets one row per picked completion:

    failed        a checkable source (verifier, rule) did not pass it; at most
                  ``watch.failed_per_step`` per step, spread over the groups
    disagreement  a learned reward and the checks disagree: in the batch's top
                  ``watch.disagreement_quantile`` of a learned score but failed, or in its
                  bottom quantile but passed
    counterpart   the same group's completion with the opposite verdict (and the most
                  opposite learned score), kept so a disagreement becomes a ranked pair
    alert         a sample that triggered a watch alert (the alert's name is the reason)

A completion picked for several reasons is one row with every kind. A row:

    {"step": 12, "split": "train", "kinds": ["disagreement"], "reason": "rm high (top 25%) but failed: too_long",
     "uid": "train-7", "group": 3, "messages": [...], "reference": ..., "verifier": "preference_rule",
     "completion": "...", "length": 31, "truncated": false, "reward": 0.8, "passed": false,
     "scores": {"rm": 1.9, "preference_rule": 0.0}, "raw": {"rm": 4.2}, "verdicts": {...}}

``reward`` is ``null`` on a row a weighted source failed on (excluded from training,
`rlvr.rewards.scorer`). `rlvr-badcases` (`rlvr.eval.badcases_review`) turns the file into a review file and then
into preference rows for `rlvr-rm`.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from rlvr.data.schema import Prompt
from rlvr.eval.config import WatchConfig
from rlvr.eval.watch import StepView

__all__ = ["BADCASES_FILE", "failed_rows", "disagreements", "counterpart", "mine", "case_rows", "BadCaseLog",
           "read_badcases"]

BADCASES_FILE = "badcases.jsonl"
Picked = dict[int, list[tuple[str, str]]]  # row index -> [(kind, reason)]


def failed_rows(passes: torch.Tensor, group_size: int, cap: int) -> list[int]:
    """Up to `cap` failed rows (passes == 0), round-robin over the groups: every group's first failure,
    then every group's second, and so on."""
    values = passes.tolist()
    failed = [[i for i in range(g, min(g + group_size, len(values))) if values[i] == 0]
              for g in range(0, len(values), group_size)]
    out: list[int] = []
    for rank in range(group_size):
        out += [rows[rank] for rows in failed if len(rows) > rank]
    return out[:max(cap, 0)]


def disagreements(learned: torch.Tensor, passes: torch.Tensor, quantile: float) -> tuple[list[int], list[int]]:
    """(high but failed, low but passed): rows a check scored whose learned score is in the batch's top
    `quantile` while failing (highest first), or in its bottom `quantile` while passing (lowest first)."""
    valid = ~torch.isnan(passes)
    if int(valid.sum()) < 2 or not 0 < quantile < 1:
        return [], []
    scores = learned.float()
    high, low = torch.quantile(scores[valid], 1 - quantile), torch.quantile(scores[valid], quantile)
    if not high > low:  # the learned scores do not spread: nothing is high or low
        return [], []
    hi = torch.nonzero(valid & (passes == 0) & (scores >= high)).flatten()
    lo = torch.nonzero(valid & (passes == 1) & (scores <= low)).flatten()
    hi = hi[torch.argsort(scores[hi], descending=True, stable=True)]
    lo = lo[torch.argsort(scores[lo], stable=True)]
    return hi.tolist(), lo.tolist()


def counterpart(i: int, learned: torch.Tensor, passes: torch.Tensor, group_size: int) -> Optional[int]:
    """The row of i's group with the opposite verdict and the most opposite learned score, if any."""
    start, stop = i - i % group_size, min(i - i % group_size + group_size, len(passes))
    verdicts, scores = passes[start:stop].tolist(), learned[start:stop].tolist()
    mine = verdicts[i - start]
    rows = [j for j in range(len(verdicts)) if j != i - start and not math.isnan(verdicts[j]) and verdicts[j] != mine]
    if not rows:
        return None
    return start + min(rows, key=(lambda j: scores[j]) if mine == 0 else (lambda j: -scores[j]))


def mine(view: StepView, cfg: WatchConfig) -> Picked:
    """The failed rows and the disagreements (with counterparts) of one batch."""
    picked: Picked = {}
    passes = view.passes()
    if passes is None:
        return picked
    verdicts = view.result.reasons[view.result.gate] if view.result.gate else None
    for i in failed_rows(passes, view.group_size, cfg.failed_per_step):
        picked.setdefault(i, []).append(("failed", f"failed: {verdicts[i]}" if verdicts else "failed a check"))
    for label in view.learned:
        scores = view.result.per_source[label]
        mask = view.result.rows(label)
        high, low = disagreements(scores, torch.where(mask, passes, torch.full_like(passes, math.nan)),
                                  cfg.disagreement_quantile)
        pct = f"{cfg.disagreement_quantile:.0%}"
        chosen = [x for pair in zip(high, low) for x in pair] + high[len(low):] + low[len(high):]
        for i in chosen[:max(cfg.disagreements_per_step, 0)]:
            why = f"{label} high (top {pct}) but failed" if passes[i] == 0 else f"{label} low (bottom {pct}) but passed"
            picked.setdefault(i, []).append(("disagreement", why + (f": {verdicts[i]}" if verdicts else "")))
            j = counterpart(i, scores, passes, view.group_size)
            if j is not None:
                picked.setdefault(j, []).append(("counterpart", f"the opposite verdict to completion {i} of this "
                                                                f"step ({label} disagreement)"))
    return picked


def _columns(view: StepView, table: dict[str, torch.Tensor]) -> dict[str, list[Optional[float]]]:
    """label -> [N] values as floats, None where the source did not score the row."""
    r = view.result
    return {k: [v if ok else None for v, ok in zip(t.tolist(), r.rows(k).tolist())] for k, t in table.items()}


def case_rows(view: StepView, prompts: Sequence[Prompt], picked: Picked, split: str) -> list[dict[str, Any]]:
    """The badcases.jsonl rows of the picked completions (`prompts[i]` produced completion i)."""
    r, rows = view.result, []
    if not picked:
        return rows
    scores, raw = _columns(view, r.per_source), _columns(view, r.raw)
    for i in sorted(picked):
        kinds = list(dict.fromkeys(k for k, _ in picked[i]))
        p = prompts[i]
        rows.append({
            "step": view.step, "split": split, "kinds": kinds, "reason": "; ".join(why for _, why in picked[i]),
            "uid": p.uid, "group": i // view.group_size, "messages": [dict(m) for m in p.messages],
            "reference": p.reference, "verifier": p.verifier, **({"fields": dict(p.fields)} if p.fields else {}),
            "completion": view.texts[i], "length": int(view.lengths[i]), "truncated": bool(view.truncated[i]),
            **({"transcript": view.transcripts[i]} if view.transcripts is not None else {}),
            "reward": float(r.rewards[i]) if bool(r.valid()[i]) else None,  # None: excluded (a source failed)
            "passed": None if r.passed is None else bool(r.passed[i]),
            "scores": {k: v[i] for k, v in scores.items()}, "raw": {k: v[i] for k, v in raw.items()},
            "verdicts": {k: r.reasons[k][i] for k in r.reasons}})
    return rows


class BadCaseLog:
    """Appends to RUN_DIR/badcases.jsonl; on resume, forgets the rows of steps after the checkpoint."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / BADCASES_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()  # every run has the file, empty when nothing went wrong

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            with open(self.path, "a") as f:
                f.write("".join(json.dumps(row, default=str) + "\n" for row in rows))

    def truncate(self, step: int) -> None:
        keep = [r for r in read_badcases(self.path) if r.get("step", 0) <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in keep))
        os.replace(tmp, self.path)


def read_badcases(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a badcases.jsonl (a torn last line is dropped; another bad line is a ValueError)."""
    path = Path(path)
    lines = path.read_text().splitlines() if path.is_file() else []
    rows = []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines) - 1:
                break
            raise ValueError(f"{path}:{n + 1}: not a JSON row") from None
        if not isinstance(row, dict) or "completion" not in row:
            raise ValueError(f"{path}:{n + 1}: a bad-case row needs at least 'completion' (and 'messages')")
        rows.append(row)
    return rows
