"""`rlvr-coevolve`: the reward-model / policy co-evolution loop on the built-in preference task.

    rlvr-coevolve --out runs/coevo                       # the demo: two rounds on CPU
    rlvr-coevolve --out runs/coevo --rm trainer.epochs=1 --grpo trainer.total_steps=30

Every stage is a documented command run as its own process (its log in ``OUT/logs/``):

    data      OUT/data/round1_rm.jsonl  ranked rows over the task's training prompts, labelled by a
                                        length-biased labeller (`ranked_rows(length_bias=...)`)
              OUT/data/heldout.jsonl    fixed held-out rows over the task's held-out prompts, ranked by
                                        the true rule: what both reward models are measured on
    round 1   rlvr-rm +experiment=coevo_rm data.path=round1_rm.jsonl        -> OUT/round1-rm
              rlvr-train +experiment=coevo_grpo (that RM, the true rule at weight 0) -> OUT/round1-grpo
              rlvr-badcases OUT/round1-grpo --relabel-verifier preference_rule --rank-by-detail true_score
                        -> its bad cases ranked by the true rule; rows of held-out prompts are dropped
                           (counted), the rest is OUT/data/round1_mined.jsonl (origin badcases:round1-grpo)
    round 2   rlvr-rm on round1_rm.jsonl + the mined rows (x mined_copies)  -> OUT/round2-rm
              rlvr-train +experiment=coevo_grpo against it, from the same cached SFT start -> OUT/round2-grpo
    summary   OUT/coevolution.json (per round: the RM's held-out accuracy overall, on pairs whose
              answers differ in length and per length bucket; the policy's true preference before /
              after, KL, the watch's alerts) and OUT/index.html (both rounds' reports side by side)

A stage that fails stops the loop with one ``error:`` line naming its log (exit status 2).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from rlvr.data.chat import DataError

__all__ = ["CoevoConfig", "StageError", "length_buckets", "bucket_accuracy", "rm_figures", "alert_figures",
           "policy_figures", "drop_heldout_rows", "round2_rows", "run_loop", "main", "SUMMARY_FILE"]

SUMMARY_FILE = "coevolution.json"
TRUE_RULE = "preference_rule"
RM_PRESET, GRPO_PRESET = "+experiment=coevo_rm", "+experiment=coevo_grpo"


def _opt(default: Any, help: str) -> Any:
    """A config field with its one description (also the --help text)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class CoevoConfig:
    out: str = _opt("runs/coevolution", "output directory: every stage's run directory, coevolution.json")
    length_bias: float = _opt(0.5, "round 1's labeller: probability a ranked row is ranked by length (longest first)")
    train_rows: int = _opt(2000, "round-1 ranked rows over the task's training prompts (kept in round 2)")
    heldout_rows: int = _opt(200, "fixed held-out rows over the task's held-out prompts, ranked by the true rule")
    answers_per_prompt: int = _opt(4, "answers per ranked row (K answers -> K(K-1)/2 pairs)")
    seed: int = _opt(0, "seed of the generated preference rows")
    mined_copies: int = _opt(4, "times each mined row appears in round 2's reward-model data")
    rm: list[str] = _opt([], "extra Hydra override for both rlvr-rm runs (repeatable), after +experiment=coevo_rm")
    grpo: list[str] = _opt([], "extra Hydra override for both rlvr-train runs (repeatable), after "
                               "+experiment=coevo_grpo")


class StageError(DataError):
    """A stage's process failed (or left no output): one line naming its log."""


# ---- pure figures -------------------------------------------------------------------------------------------

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
    """An rlvr-train summary's true preference, KL, held-out length and the watch's alerts."""
    dims, length = summary.get("dimensions", {}), summary.get("length") or {}
    true_dim = dims.get(TRUE_RULE, {})
    return {"true_preference_before": summary.get("true_preference_before"),
            "true_preference_after": summary.get("true_preference_after"),
            "true_preference_change_ci": [true_dim.get("ci_low"), true_dim.get("ci_high")],
            "true_preference_verdict": true_dim.get("verdict"), "kl": summary.get("kl"),
            "steps": summary.get("steps"), "stopped_by_watch": summary.get("stopped_by_watch"),
            "length_before": length.get("start"), "length_after": length.get("end"),
            "alerts": alert_figures(alerts, int(summary.get("steps") or 0)),
            "report": (summary.get("report") or {}).get("html"), "run_dir": summary.get("run_dir")}


def drop_heldout_rows(rows: Sequence[dict[str, Any]], heldout_questions: set[str]
                      ) -> tuple[list[dict[str, Any]], int]:
    """Mined rows whose prompt is not a held-out prompt (those would leak into the held-out figures), and how
    many were dropped."""
    def question(row: dict[str, Any]) -> str:
        return " ".join(m.get("content", "") for m in row.get("messages", []) if m.get("role") == "user")

    kept = [r for r in rows if question(r) not in heldout_questions]
    return kept, len(rows) - len(kept)


def round2_rows(old: Sequence[dict[str, Any]], mined: Sequence[dict[str, Any]], copies: int
                ) -> list[dict[str, Any]]:
    """Round 2's reward-model rows: the old ones, then each mined row ``copies`` times (distinct ids)."""
    out = list(old)
    for c in range(copies):
        out += [dict(r, id=f"{r['id']}#{c}") if copies > 1 else dict(r) for r in mined]
    return out


# ---- stages -------------------------------------------------------------------------------------------------

def _read_json(path: Path, stage: str) -> dict[str, Any]:
    if not path.is_file():
        raise StageError(f"{stage}: {path} was not written; see the stage's log")
    return json.loads(path.read_text())


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class Stages:
    """Runs each stage as the documented command in its own process, logging to OUT/logs/<stage>.log."""

    SHOWN = {"rlvr.rm.train": "rlvr-rm", "rlvr.train": "rlvr-train", "rlvr.eval.badcases_review": "rlvr-badcases"}

    def __init__(self, cfg: CoevoConfig):
        self.cfg, self.out = cfg, Path(cfg.out).resolve()
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.walls: dict[str, float] = {}

    def run(self, name: str, module: str, args: Sequence[str]) -> None:
        log = self.logs / f"{name}.log"
        print(f"[{name}] {self.SHOWN.get(module, module)} {' '.join(args)}", flush=True)
        start = time.perf_counter()
        with open(log, "w") as f:
            proc = subprocess.run([sys.executable, "-m", module, *args], env=self.env, stdout=f,
                                  stderr=subprocess.STDOUT)
        self.walls[name] = round(time.perf_counter() - start, 1)
        if proc.returncode:
            last = [line for line in log.read_text().splitlines() if line.strip()][-1:] or ["(no output)"]
            raise StageError(f"stage {name} failed (exit status {proc.returncode}): {last[0][:300]}; log {log}")
        print(f"[{name}] done in {self.walls[name]:.0f} s", flush=True)

    def reward_model(self, rnd: int, data: Path) -> dict[str, Any]:
        run_dir = self.out / f"round{rnd}-rm"
        self.run(f"round{rnd}-rm", "rlvr.rm.train", [RM_PRESET, f"data.path={data}",
                                                      f"data.eval_path={self.out / 'data' / 'heldout.jsonl'}",
                                                      f"hydra.run.dir={run_dir}", *self.cfg.rm])
        return _read_json(run_dir / "summary.json", f"round{rnd}-rm")

    def policy(self, rnd: int, rm_dir: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        run_dir = self.out / f"round{rnd}-grpo"
        self.run(f"round{rnd}-grpo", "rlvr.train", [GRPO_PRESET, f"reward.sources.0.path={rm_dir}",
                                                    f"hydra.run.dir={run_dir}", *self.cfg.grpo])
        summary = _read_json(run_dir / "summary.json", f"round{rnd}-grpo")
        return summary, _read_jsonl(run_dir / "alerts.jsonl")

    def mine(self, rnd: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        run_dir = self.out / f"round{rnd}-grpo"
        self.run(f"round{rnd}-mine", "rlvr.eval.badcases_review", [str(run_dir), "--relabel-verifier", TRUE_RULE,
                                                              "--rank-by-detail", "true_score"])
        from rlvr.eval.badcases_review import PREFERENCES_FILE

        rows = _read_jsonl(run_dir / PREFERENCES_FILE)
        kept, dropped = drop_heldout_rows(rows, heldout_questions())
        path = _write_jsonl(self.out / "data" / f"round{rnd}_mined.jsonl", kept)
        pairs = sum(_ranked_pairs(r) for r in kept)
        print(f"[round{rnd}-mine] {len(rows)} preference rows from the bad cases; {dropped} of held-out prompts "
              f"dropped; {len(kept)} rows ({pairs} pairs) -> {path}", flush=True)
        return kept, {"file": str(path), "rows": len(kept), "pairs": pairs, "heldout_prompt_rows_dropped": dropped,
                      "bad_cases": len(_read_jsonl(run_dir / "badcases.jsonl")),
                      "origins": sorted({str(r.get("origin")) for r in kept})}


def _ranked_pairs(row: dict[str, Any]) -> int:
    ranks = [a["rank"] for a in row["answers"]]
    return sum(1 for i, a in enumerate(ranks) for b in ranks[i + 1:] if a != b)


def heldout_questions() -> set[str]:
    """The user text of every held-out prompt of the built-in task."""
    from rlvr.data.preference_task import HELD_OUT_SIZE, PreferenceTask

    task = PreferenceTask("eval", HELD_OUT_SIZE)
    return {" ".join(m["content"] for m in task[i].messages if m["role"] == "user") for i in range(len(task))}


def write_data(cfg: CoevoConfig, out: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Round 1's biased rows and the fixed held-out rows; returns the rows and the held-out length buckets."""
    from rlvr.data.preference_task import ranked_rows
    from rlvr.preference import load_preferences

    rows = ranked_rows(cfg.train_rows, cfg.seed, cfg.answers_per_prompt, cfg.length_bias, "train")
    held = ranked_rows(cfg.heldout_rows, cfg.seed, cfg.answers_per_prompt, 0.0, "eval")
    _write_jsonl(out / "data" / "round1_rm.jsonl", rows)
    _write_jsonl(out / "data" / "heldout.jsonl", held)
    biased = sum(r["origin"].endswith("length_biased") for r in rows)
    buckets = length_buckets(load_preferences(held).pairs)
    print(f"[data] {len(rows)} round-1 rows ({biased} ranked by length, length_bias={cfg.length_bias}); "
          f"{len(held)} held-out rows ranked by the true rule ({sum(buckets.values())} pairs: {buckets})", flush=True)
    return rows, buckets


# ---- the loop -----------------------------------------------------------------------------------------------

def _round(rnd: int, stages: Stages, data: Path, buckets: dict[str, int], mined_in: int) -> dict[str, Any]:
    rm_summary = stages.reward_model(rnd, data)
    rm = {**rm_figures(rm_summary, buckets), "data": str(data), "mined_rows_in_data": mined_in}
    policy_summary, alerts = stages.policy(rnd, str(rm_summary["model_dir"]))
    return {"round": rnd, "rm": rm, "grpo": policy_figures(policy_summary, alerts)}


def headline(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The loop's figures: true-preference gain of round 2 over round 1, round 1's alerts, RM gains."""
    r1, r2 = rounds[0], rounds[-1]
    a, b = r1["grpo"]["true_preference_after"], r2["grpo"]["true_preference_after"]
    acc1, acc2 = r1["rm"]["accuracy_length_differs"], r2["rm"]["accuracy_length_differs"]
    return {"round1_true_preference": a, "round2_true_preference": b,
            "true_preference_gain_points": None if a is None or b is None else round(100 * (b - a), 1),
            "round1_alerts": r1["grpo"]["alerts"]["count"],
            "round1_alerts_before_last_step": r1["grpo"]["alerts"]["before_last_step"],
            "rm_accuracy_length_differs": [acc1, acc2],
            "rm_accuracy_length_differs_gain": None if acc1 is None or acc2 is None else acc2 - acc1}


def headline_line(figures: dict[str, Any]) -> str:
    def f(x: Optional[float]) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    return (f"coevolution: round 1 true preference {f(figures['round1_true_preference'])} -> round 2 "
            f"{f(figures['round2_true_preference'])} (round 1 alerts: {figures['round1_alerts']})")


def write_index(out: Path, result: dict[str, Any]) -> Path:
    """OUT/index.html: the figures table and both rounds' reports side by side (relative iframes)."""
    import html

    rows = []
    for r in result["rounds"]:
        rm, g = r["rm"], r["grpo"]
        rows.append(f"<tr><td>{r['round']}</td><td>{rm['pairwise_accuracy']:.3f}</td>"
                    f"<td>{(rm['accuracy_length_differs'] or float('nan')):.3f}</td>"
                    f"<td>{g['true_preference_before']} &rarr; {g['true_preference_after']}</td><td>{g['kl']}</td>"
                    f"<td>{g['alerts']['count']}: {html.escape(', '.join(g['alerts']['names']))}</td></tr>")
    frames = "".join(f"<div><h2>round {r['round']}</h2><iframe src=\"round{r['round']}-grpo/report.html\">"
                     f"</iframe></div>" for r in result["rounds"])
    page = ("<!doctype html><meta charset=utf-8><title>co-evolution</title><style>body{font-family:sans-serif}"
            "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
            ".side{display:flex;gap:8px}.side div{flex:1}iframe{width:100%;height:1400px;border:1px solid #ccc}"
            f"</style><h1>co-evolution</h1><p>{html.escape(result['line'])}</p><table><tr><th>round</th>"
            "<th>RM held-out acc</th><th>RM acc, lengths differ</th><th>true preference</th><th>KL</th>"
            f"<th>alerts</th></tr>{''.join(rows)}</table><div class=side>{frames}</div>")
    (out / "index.html").write_text(page)
    return out / "index.html"


def run_loop(cfg: CoevoConfig) -> dict[str, Any]:
    """Both rounds, the mining between them, OUT/coevolution.json and OUT/index.html."""
    stages, started = Stages(cfg), time.perf_counter()
    out = stages.out
    old_rows, buckets = write_data(cfg, out)
    round1 = _round(1, stages, out / "data" / "round1_rm.jsonl", buckets, 0)
    mined, round1["mined"] = stages.mine(1)
    if not mined:
        print("warning: round 1 left no preference rows from its bad cases; round 2 retrains on the old rows only",
              flush=True)
    data2 = _write_jsonl(out / "data" / "round2_rm.jsonl", round2_rows(old_rows, mined, cfg.mined_copies))
    round2 = _round(2, stages, data2, buckets, len(mined) * cfg.mined_copies)
    figures = headline([round1, round2])
    result = {"line": headline_line(figures), "figures": figures, "rounds": [round1, round2],
              "heldout": {"file": str(out / "data" / "heldout.jsonl"), "rows": cfg.heldout_rows, "pairs": buckets},
              "config": dataclasses.asdict(cfg), "wall_s": {**stages.walls,
                                                            "total": round(time.perf_counter() - started, 1)}}
    (out / SUMMARY_FILE).write_text(json.dumps(result, indent=2, default=str) + "\n")
    write_index(out, result)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlvr-coevolve", description=__doc__.split("\n")[0])
    for f in dataclasses.fields(CoevoConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.default_factory is not dataclasses.MISSING:  # the override lists
            p.add_argument(flag, action="append", default=None, metavar="KEY=VALUE", help=f.metadata["help"])
        else:
            p.add_argument(flag, type=type(f.default), default=f.default,
                           help=f"{f.metadata['help']} (default {f.default})")
    return p


def config_from_args(argv: Optional[Sequence[str]] = None) -> CoevoConfig:
    args = vars(build_parser().parse_args(argv))
    cfg = CoevoConfig(**{k: v for k, v in args.items() if v is not None})
    if not 0.0 <= cfg.length_bias <= 1.0:
        raise DataError(f"--length-bias {cfg.length_bias}: a probability in [0, 1]")
    if min(cfg.train_rows, cfg.heldout_rows, cfg.mined_copies) < 1 or cfg.answers_per_prompt < 2:
        raise DataError("--train-rows, --heldout-rows and --mined-copies must be >= 1, --answers-per-prompt >= 2")
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> None:
    from rlvr.errors import exit_on_user_error

    with exit_on_user_error():
        cfg = config_from_args(argv)
        result = run_loop(cfg)
        print(f"coevolution.json: {Path(cfg.out).resolve() / SUMMARY_FILE}\nreports side by side: "
              f"{Path(cfg.out).resolve() / 'index.html'}\n{result['line']}", flush=True)


if __name__ == "__main__":
    main()
