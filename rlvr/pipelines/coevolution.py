"""`rlvr-coevolve`: the reward-model / policy co-evolution loop (its demo: the built-in preference task).

    rlvr-coevolve --out runs/coevo                       # the demo: two rounds on CPU
    rlvr-coevolve --out runs/coevo --rm trainer.epochs=1 --grpo trainer.total_steps=30
    rlvr-coevolve --data mine.jsonl --heldout-data mine_heldout.jsonl --rm-preset +experiment=my_rm \
                  --grpo-preset +experiment=my_grpo --relabel judge --relabel-opt base_url=... --relabel-opt model=...

**Your own data and prompts.** ``--data`` (round 1's preference rows, any shape rlvr-rm
reads) and ``--heldout-data`` (the fixed rows both reward models are measured on) replace
the built-in task's generated rows; ``--rm-preset`` / ``--grpo-preset`` name your rlvr-rm and
rlvr-train presets (the GRPO preset's ``reward.sources[0]`` is the reward model the loop
trains; its prompts are your data's; its ``reward.truth`` names the run's truth, whose
held-out figures the summary reports as ``<truth name>_before`` / ``_after``:
``true_preference_*`` on the built-in task). Nothing here assumes the built-in task.

**The relabeller** (``--relabel``, `rlvr.eval.relabel`) ranks round 1's bad cases into
round 2's rows: ``verifier`` (``--relabel-name``: a registered verifier, ``verifier`` = each
row's own; the demo's ``preference_rule``, ties broken by ``--rank-by-detail``), ``rule``
(a registered rule), ``judge`` (an LLM judge through the judge reward source; its options
with ``--relabel-opt``) or ``file`` (a person's labels: ``--reviewed FILE``; when FILE does
not exist yet, the loop writes round 1's review file there and stops; fill in the labels
and rerun the same command with ``--resume``, which reuses round 1).

Every stage is a documented command run as its own process (its log in ``OUT/logs/``):

    data      OUT/data/round1_rm.jsonl  ranked rows over the task's training prompts, labelled by a
                                        length-biased labeller (`ranked_rows(length_bias=...)`)
              OUT/data/heldout.jsonl    fixed held-out rows over the task's held-out prompts, ranked by
                                        the true rule: what both reward models are measured on
    round 1   rlvr-rm +experiment=coevo_rm data.path=round1_rm.jsonl        -> OUT/round1-rm
              rlvr-train +experiment=coevo_grpo (that RM, the true rule at weight 0) -> OUT/round1-grpo
              rlvr-badcases OUT/round1-grpo --relabel-verifier preference_rule --rank-by-detail true_score
                        -> its bad cases ranked by the relabeller; rows of held-out prompts (the run's
                           held-out records and the held-out rows) are dropped (counted), the rest is
                           OUT/data/round1_mined.jsonl (origin badcases:round1-grpo)
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
from rlvr.pipelines.coevolution_figures import (alert_figures, bucket_accuracy, drop_heldout_rows, headline,
                                                headline_line, heldout_questions, length_buckets, policy_figures,
                                                rm_figures, round2_rows)

__all__ = ["CoevoConfig", "StageError", "length_buckets", "bucket_accuracy", "rm_figures", "alert_figures",
           "policy_figures", "drop_heldout_rows", "round2_rows", "run_loop", "main", "SUMMARY_FILE",
           "heldout_questions", "mine_args", "RELABEL_KINDS"]

SUMMARY_FILE = "coevolution.json"
RELABEL_KINDS = ("verifier", "rule", "judge", "file")  # rlvr.eval.relabel's, as rlvr-badcases flags (mine_args)


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
    data: str = _opt("", "round 1's preference rows (a file rlvr-rm reads); empty = the built-in task's rows")
    heldout_data: str = _opt("", "the held-out preference rows both reward models are measured on (needed with "
                                 "--data); empty = the built-in task's, ranked by its true rule")
    rm_preset: str = _opt("+experiment=coevo_rm", "rlvr-rm preset of both reward-model stages")
    grpo_preset: str = _opt("+experiment=coevo_grpo", "rlvr-train preset of both GRPO stages (its "
                                                      "reward.sources[0] is the reward model the loop trains)")
    relabel: str = _opt("verifier", "how round 1's bad cases are ranked: verifier | rule | judge | file")
    relabel_name: str = _opt("preference_rule", "relabel verifier: a registered verifier (verifier = each row's "
                                                "own); rule: a registered rule; judge: the source's label")
    relabel_opt: list[str] = _opt([], "the relabeller's option KEY=VALUE (repeatable; rule and judge read "
                                      "values as YAML, e.g. base_url=..., model=..., items=[helpful])")
    rank_by_detail: str = _opt("true_score", "relabel verifier: break reward ties by this number in the verdicts' "
                                             "details (empty = none)")
    reviewed: str = _opt("", "relabel file: the reviewed file (written there for review when it does not exist)")
    resume: bool = _opt(False, "reuse the stages whose outputs exist (after reviewing round 1's bad cases)")
    rm: list[str] = _opt([], "extra Hydra override for both rlvr-rm runs (repeatable), after --rm-preset")
    grpo: list[str] = _opt([], "extra Hydra override for both rlvr-train runs (repeatable), after --grpo-preset")


class StageError(DataError):
    """A stage's process failed (or left no output): one line naming its log."""


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

    def run(self, name: str, module: str, args: Sequence[str], done: Optional[Path] = None) -> None:
        """``module args`` as stage ``name``; with ``resume``, skipped when ``done`` (its output) exists."""
        if self.cfg.resume and done is not None and done.is_file():
            print(f"[{name}] reused: {done} exists (--resume)", flush=True)
            return
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
        self.run(f"round{rnd}-rm", "rlvr.rm.train", [self.cfg.rm_preset, f"data.path={data}",
                                                      f"data.eval_path={self.out / 'data' / 'heldout.jsonl'}",
                                                      f"hydra.run.dir={run_dir}", *self.cfg.rm],
                 done=run_dir / "summary.json")
        return _read_json(run_dir / "summary.json", f"round{rnd}-rm")

    def policy(self, rnd: int, rm_dir: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        run_dir = self.out / f"round{rnd}-grpo"
        self.run(f"round{rnd}-grpo", "rlvr.train", [self.cfg.grpo_preset, f"reward.sources.0.path={rm_dir}",
                                                    f"hydra.run.dir={run_dir}", *self.cfg.grpo],
                 done=run_dir / "summary.json")
        summary = _read_json(run_dir / "summary.json", f"round{rnd}-grpo")
        return summary, _read_jsonl(run_dir / "alerts.jsonl")

    def mine(self, rnd: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Round ``rnd``'s bad cases ranked by the relabeller, held-out prompts dropped; ``([], {"review": FILE})``
        when a person's labels are still to be written (``--relabel file``, FILE written for review)."""
        from rlvr.eval.badcases_review import PREFERENCES_FILE

        run_dir = self.out / f"round{rnd}-grpo"
        review = Path(self.cfg.reviewed).expanduser() if self.cfg.reviewed else None
        if self.cfg.relabel == "file" and review is not None and not review.is_file():
            self.run(f"round{rnd}-review", "rlvr.eval.badcases_review", [str(run_dir), "--out", str(review)])
            return [], {"review": str(review)}
        self.run(f"round{rnd}-mine", "rlvr.eval.badcases_review", [str(run_dir), *mine_args(self.cfg)])
        rows = _read_jsonl(run_dir / PREFERENCES_FILE)
        kept, dropped = drop_heldout_rows(rows, heldout_questions(run_dir, _read_jsonl(self.out / "data" /
                                                                                        "heldout.jsonl")))
        path = _write_jsonl(self.out / "data" / f"round{rnd}_mined.jsonl", kept)
        pairs = sum(_ranked_pairs(r) for r in kept)
        print(f"[round{rnd}-mine] {len(rows)} preference rows from the bad cases; {dropped} of held-out prompts "
              f"dropped; {len(kept)} rows ({pairs} pairs) -> {path}", flush=True)
        return kept, {"file": str(path), "rows": len(kept), "pairs": pairs, "heldout_prompt_rows_dropped": dropped,
                      "bad_cases": len(_read_jsonl(run_dir / "badcases.jsonl")),
                      "origins": sorted({str(r.get("origin")) for r in kept}), "relabel": self.cfg.relabel}


def mine_args(cfg: CoevoConfig) -> list[str]:
    """rlvr-badcases's arguments for the chosen relabeller (`rlvr.eval.relabel`)."""
    opts = [x for opt in cfg.relabel_opt for x in ("--opt", opt)]
    if cfg.relabel == "verifier":
        return ["--relabel-verifier", cfg.relabel_name, *opts,
                *(["--rank-by-detail", cfg.rank_by_detail] if cfg.rank_by_detail else [])]
    if cfg.relabel == "rule":
        return ["--relabel-rule", cfg.relabel_name, *opts]
    if cfg.relabel == "judge":
        return ["--relabel-judge", *opts]
    return ["--reviewed", cfg.reviewed]  # file: a person's labels


def _ranked_pairs(row: dict[str, Any]) -> int:
    ranks = [a["rank"] for a in row["answers"]]
    return sum(1 for i, a in enumerate(ranks) for b in ranks[i + 1:] if a != b)


def write_data(cfg: CoevoConfig, out: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Round 1's rows and the fixed held-out rows (the user's files, else the built-in task's: length-biased
    rows and rows ranked by its true rule) in OUT/data/; returns round 1's rows and the held-out length buckets."""
    from rlvr.preference import load_preferences

    if cfg.data:
        from rlvr.preference.load import read_rows

        rows, held = ([dict(r) for r in read_rows(path) if isinstance(r, dict)]
                      for path in (cfg.data, cfg.heldout_data))
        said = f"{len(rows)} round-1 rows from {cfg.data}; {len(held)} held-out rows from {cfg.heldout_data}"
    else:
        from rlvr.data.preference_task import ranked_rows

        rows = ranked_rows(cfg.train_rows, cfg.seed, cfg.answers_per_prompt, cfg.length_bias, "train")
        held = ranked_rows(cfg.heldout_rows, cfg.seed, cfg.answers_per_prompt, 0.0, "eval")
        biased = sum(r["origin"].endswith("length_biased") for r in rows)
        said = (f"{len(rows)} round-1 rows ({biased} ranked by length, length_bias={cfg.length_bias}); "
                f"{len(held)} held-out rows ranked by the true rule")
    _write_jsonl(out / "data" / "round1_rm.jsonl", rows)
    _write_jsonl(out / "data" / "heldout.jsonl", held)
    buckets = length_buckets(load_preferences(held).pairs)
    print(f"[data] {said} ({sum(buckets.values())} held-out pairs: {buckets})", flush=True)
    return rows, buckets


# ---- the loop -----------------------------------------------------------------------------------------------

def _round(rnd: int, stages: Stages, data: Path, buckets: dict[str, int], mined_in: int) -> dict[str, Any]:
    rm_summary = stages.reward_model(rnd, data)
    rm = {**rm_figures(rm_summary, buckets), "data": str(data), "mined_rows_in_data": mined_in}
    policy_summary, alerts = stages.policy(rnd, str(rm_summary["model_dir"]))
    return {"round": rnd, "rm": rm, "grpo": policy_figures(policy_summary, alerts)}


def write_index(out: Path, result: dict[str, Any]) -> Path:
    """OUT/index.html: the figures table and both rounds' reports side by side (relative iframes)."""
    import html

    rows, name = [], result["figures"].get("truth")
    for r in result["rounds"]:
        rm, g = r["rm"], r["grpo"]
        truth = f"{g[f'{name}_before']} &rarr; {g[f'{name}_after']}" if name else "n/a"
        rows.append(f"<tr><td>{r['round']}</td><td>{rm['pairwise_accuracy']:.3f}</td>"
                    f"<td>{(rm['accuracy_length_differs'] or float('nan')):.3f}</td>"
                    f"<td>{truth}</td><td>{g['kl']}</td>"
                    f"<td>{g['alerts']['count']}: {html.escape(', '.join(g['alerts']['names']))}</td></tr>")
    frames = "".join(f"<div><h2>round {r['round']}</h2><iframe src=\"round{r['round']}-grpo/report.html\">"
                     f"</iframe></div>" for r in result["rounds"])
    page = ("<!doctype html><meta charset=utf-8><title>co-evolution</title><style>body{font-family:sans-serif}"
            "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
            ".side{display:flex;gap:8px}.side div{flex:1}iframe{width:100%;height:1400px;border:1px solid #ccc}"
            f"</style><h1>co-evolution</h1><p>{html.escape(result['line'])}</p><table><tr><th>round</th>"
            f"<th>RM held-out acc</th><th>RM acc, lengths differ</th><th>{html.escape(name or 'truth')}</th><th>KL</th>"
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
    if "review" in round1["mined"]:  # --relabel file: a person labels round 1's bad cases first
        review = round1["mined"]["review"]
        line = (f"round 1's bad cases are in {review}: fill in each answer's label (good / bad / a rank, 0 best), "
                f"then rerun this command with --resume (round 1 is reused)")
        print(line, flush=True)
        return {"line": line, "review": review, "rounds": [round1]}
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


def dataclass_parser(prog: str, description: str, config: type) -> argparse.ArgumentParser:
    """One ``--flag`` per field of a pipeline's config dataclass (fields made with `_opt`): list fields repeat
    (``action=append``), booleans are switches, the rest take a value of their default's type."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    for f in dataclasses.fields(config):
        flag = "--" + f.name.replace("_", "-")
        if f.default_factory is not dataclasses.MISSING:  # the override lists
            p.add_argument(flag, action="append", default=None, metavar="KEY=VALUE", help=f.metadata["help"])
        elif isinstance(f.default, bool):
            p.add_argument(flag, action="store_true", default=None, help=f.metadata["help"])
        else:
            p.add_argument(flag, type=type(f.default), default=f.default,
                           help=f"{f.metadata['help']} (default {f.default})")
    return p


def build_parser() -> argparse.ArgumentParser:
    return dataclass_parser("rlvr-coevolve", __doc__.split("\n")[0], CoevoConfig)


def config_from_args(argv: Optional[Sequence[str]] = None) -> CoevoConfig:
    args = vars(build_parser().parse_args(argv))
    cfg = CoevoConfig(**{k: v for k, v in args.items() if v is not None})
    if not 0.0 <= cfg.length_bias <= 1.0:
        raise DataError(f"--length-bias {cfg.length_bias}: a probability in [0, 1]")
    if min(cfg.train_rows, cfg.heldout_rows, cfg.mined_copies) < 1 or cfg.answers_per_prompt < 2:
        raise DataError("--train-rows, --heldout-rows and --mined-copies must be >= 1, --answers-per-prompt >= 2")
    if cfg.relabel not in RELABEL_KINDS:
        raise DataError(f"--relabel {cfg.relabel}: choose one of {', '.join(RELABEL_KINDS)}")
    if cfg.relabel == "file" and not cfg.reviewed:
        raise DataError("--relabel file needs --reviewed FILE (a person's labels; written there for review first)")
    if cfg.relabel in ("verifier", "rule") and not cfg.relabel_name:
        raise DataError(f"--relabel {cfg.relabel} needs --relabel-name (a registered {cfg.relabel})")
    if bool(cfg.data) != bool(cfg.heldout_data):
        raise DataError("--data and --heldout-data go together: round 1's rows and the rows both reward models are "
                        "measured on (leave both empty for the built-in task)")
    for path in (cfg.data, cfg.heldout_data):
        if path and not Path(path).expanduser().is_file():
            raise DataError(f"{path}: no such preference file")
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
