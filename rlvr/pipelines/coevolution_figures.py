"""The co-evolution loop's figures (`rlvr.pipelines.coevolution`): pure functions of the stages' summaries.

The policy's figures follow the GRPO runs' named truth (``reward.truth``, recorded in their
summary.json as ``truth``): ``<name>_before`` / ``_after`` / ``_change_ci`` / ``_verdict`` per
round, and ``round1_<name>``, ``round2_<name>``, ``<name>_gain_points`` in the headline; on the
built-in preference task the name is ``true_preference``. A run that names no truth has only
the reward models' figures and the watch's alerts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = ["length_buckets", "bucket_accuracy", "rm_figures", "alert_figures", "policy_figures", "drop_heldout_rows",
           "heldout_questions", "round2_rows", "truth_name", "headline", "headline_line"]


def length_buckets(pairs: Sequence[Any]) -> dict[str, int]:
    """Pair counts: the chosen answer shorter / longer / as long as the rejected one (characters)."""
    out = {"chosen_shorter": 0, "chosen_longer": 0, "same_length": 0}
    for p in pairs:
        d = len(p.chosen) - len(p.rejected)
        out["chosen_shorter" if d < 0 else "chosen_longer" if d > 0 else "same_length"] += 1
    return out


def bucket_accuracy(acc_shorter: Optional[float], acc_longer: Optional[float], buckets: dict[str, int]
                    ) -> Optional[float]:
    """Accuracy over the pairs whose answers differ in length, from the two buckets' accuracies."""
    parts = [(a, buckets[k]) for a, k in ((acc_shorter, "chosen_shorter"), (acc_longer, "chosen_longer"))
             if buckets[k] and a is not None and a == a]
    total = sum(n for _, n in parts)
    return sum(a * n for a, n in parts) / total if total else None


def rm_figures(summary: dict[str, Any], buckets: dict[str, int]) -> dict[str, Any]:
    """An rlvr-rm summary's held-out figures, with the accuracy on pairs that differ in length."""
    held = summary.get("eval", {}).get("heldout", {})
    return {"pairwise_accuracy": summary.get("pairwise_accuracy"),
            "accuracy_length_differs": bucket_accuracy(held.get("acc_chosen_shorter"),
                                                       held.get("acc_chosen_longer"), buckets),
            "acc_chosen_shorter": held.get("acc_chosen_shorter"), "acc_chosen_longer": held.get("acc_chosen_longer"),
            "length_bias_gap": summary.get("length_bias_gap"), "reward_length_corr": held.get("reward_length_corr"),
            "train_accuracy": summary.get("train_accuracy"), "train_pairs": summary.get("pairs", {}).get("train"),
            "heldout_pairs": summary.get("pairs", {}).get("heldout"), "wall_time_s": summary.get("wall_time_s"),
            "model_dir": summary.get("model_dir"), "run_dir": summary.get("run_dir")}


def alert_figures(alerts: Sequence[dict[str, Any]], last_step: int) -> dict[str, Any]:
    """Raised alerts (alerts.jsonl rows): how many, their names, how many before the run's last step."""
    names = list(dict.fromkeys(str(a["name"]) for a in alerts))
    before = [a for a in alerts if int(a["step"]) < last_step]
    return {"count": len(alerts), "names": names, "before_last_step": len(before),
            "first_step": min((int(a["step"]) for a in alerts), default=None),
            "per_name": {n: sum(a["name"] == n for a in alerts) for n in names}}


def policy_figures(summary: dict[str, Any], alerts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An rlvr-train summary's truth (``reward.truth``: ``<name>_before|after|change_ci|verdict``, on the built-in
    task ``true_preference_*``), KL, held-out length and the watch's alerts."""
    dims, length = summary.get("dimensions", {}), summary.get("length") or {}
    truth = summary.get("truth") or {}
    out: dict[str, Any] = {"truth": truth}
    if truth.get("name"):
        name, dim = truth["name"], dims.get(truth.get("source"), {})
        out.update({f"{name}_before": summary.get(f"{name}_before"), f"{name}_after": summary.get(f"{name}_after"),
                    f"{name}_change_ci": [dim.get("ci_low"), dim.get("ci_high")],
                    f"{name}_verdict": dim.get("verdict")})
    return {**out, "kl": summary.get("kl"),
            "steps": summary.get("steps"), "stopped_by_watch": summary.get("stopped_by_watch"),
            "length_before": length.get("start"), "length_after": length.get("end"),
            "alerts": alert_figures(alerts, int(summary.get("steps") or 0)),
            "report": (summary.get("report") or {}).get("html"), "run_dir": summary.get("run_dir")}


def drop_heldout_rows(rows: Sequence[dict[str, Any]], heldout_questions: set[str]
                      ) -> tuple[list[dict[str, Any]], int]:
    """Mined rows whose prompt is not a held-out prompt (those would leak into the held-out figures), and how
    many were dropped."""
    kept = [r for r in rows if _question(r.get("messages")) not in heldout_questions]
    return kept, len(rows) - len(kept)


def _question(messages: Any) -> str:
    return " ".join(m.get("content", "") for m in messages or [] if isinstance(m, dict) and m.get("role") == "user")


def heldout_questions(run_dir: Path, heldout_rows: Sequence[dict[str, Any]] = ()) -> set[str]:
    """The user text of every held-out prompt: the GRPO run's held-out records (RUN_DIR/eval/) and the held-out
    preference rows (those with ``messages``)."""
    from rlvr.eval.heldout import read_eval_records

    records = [r for rows in read_eval_records(run_dir).values() for r in rows]
    return {q for q in (_question(r.get("messages")) for r in [*records, *heldout_rows]) if q}


def round2_rows(old: Sequence[dict[str, Any]], mined: Sequence[dict[str, Any]], copies: int
                ) -> list[dict[str, Any]]:
    """Round 2's reward-model rows: the old ones, then each mined row ``copies`` times (distinct ids)."""
    out = list(old)
    for c in range(copies):
        out += [dict(r, id=f"{r['id']}#{c}") if copies > 1 else dict(r) for r in mined]
    return out


def truth_name(rounds: Sequence[dict[str, Any]]) -> Optional[str]:
    """The GRPO runs' truth name (``reward.truth.name``; ``true_preference`` on the built-in task), if any."""
    return (rounds[0]["grpo"].get("truth") or {}).get("name")


def headline(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The loop's figures: the truth's gain of round 2 over round 1 (``round1_<name>``, ``round2_<name>``,
    ``<name>_gain_points``; the built-in task: ``true_preference``), round 1's alerts, RM gains."""
    r1, r2 = rounds[0], rounds[-1]
    acc1, acc2 = r1["rm"]["accuracy_length_differs"], r2["rm"]["accuracy_length_differs"]
    out: dict[str, Any] = {"truth": truth_name(rounds)}
    if out["truth"]:
        name = out["truth"]
        a, b = r1["grpo"][f"{name}_after"], r2["grpo"][f"{name}_after"]
        out.update({f"round1_{name}": a, f"round2_{name}": b,
                    f"{name}_gain_points": None if a is None or b is None else round(100 * (b - a), 1)})
    return {**out, "round1_alerts": r1["grpo"]["alerts"]["count"],
            "round1_alerts_before_last_step": r1["grpo"]["alerts"]["before_last_step"],
            "rm_accuracy_length_differs": [acc1, acc2],
            "rm_accuracy_length_differs_gain": None if acc1 is None or acc2 is None else acc2 - acc1}


def headline_line(figures: dict[str, Any]) -> str:
    def f(x: Optional[float]) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    name = figures.get("truth")
    if not name:  # the GRPO preset names no truth: the alerts alone
        return f"coevolution: no reward.truth named (round 1 alerts: {figures['round1_alerts']})"
    return (f"coevolution: round 1 {name.replace('_', ' ')} {f(figures[f'round1_{name}'])} -> round 2 "
            f"{f(figures[f'round2_{name}'])} (round 1 alerts: {figures['round1_alerts']})")
