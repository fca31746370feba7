"""`rlvr-badcases RUN_DIR`: a run's bad cases -> a review file -> preference rows for `rlvr-rm`.

    rlvr-badcases RUN_DIR                                   # RUN_DIR/badcases_review.jsonl
    rlvr-badcases RUN_DIR --reviewed FILE                   # labels filled in -> preference rows
    rlvr-badcases RUN_DIR --relabel-verifier preference_rule [--opt k=v] [--rank-by-detail true_score]
    rlvr-badcases RUN_DIR --relabel-rule length_budget --opt max_chars=200
    rlvr-badcases RUN_DIR --relabel-judge --opt base_url=http://127.0.0.1:8000/v1 --opt model=M --opt items=[helpful]

The review file has one line per prompt (bad cases of the same prompt, from any step,
together; identical answers merged), each answer with an empty ``label``:

    {"id": "train-7", "messages": [...], "reference": ..., "verifier": "math",
     "answers": [{"text": "...", "label": "", "kinds": ["disagreement"], "reasons": [...],
                  "steps": [12], "split": "train", "scores": {...}, "verdicts": {...}}, ...]}

A label is ``good`` (rank 0) or ``bad`` (rank 1), or an integer rank (0 best; equal
ranks tie); empty or ``skip`` leaves the answer out. ``--relabel-verifier NAME`` ranks
every answer by a registered verifier's reward instead (``verifier`` = each row's own),
higher first, ties equal; ``--rank-by-detail KEY`` breaks ties by a number the verifier
puts in its verdict's details (the preference rule's ``true_score``). ``--relabel-rule NAME``
ranks by a registered rule's score, ``--relabel-judge`` by an LLM judge's rubric score (the
``judge`` reward source, its options given with ``--opt``; an answer the judge fails on is
left out, never ranked last); both read ``--opt`` values as YAML (numbers, lists). The
relabellers are `rlvr.eval.relabel`'s. Either way the output (default
RUN_DIR/badcases_preferences.jsonl) is rlvr-rm's canonical schema:

    {"id": "badcases:<run>/train-7", "messages": [...], "answers": [{"text": ..., "rank": 0}, ...],
     "origin": "badcases:<run>"}

A prompt with fewer than two ranked answers or only tied ones is dropped and counted.
A run without bad cases (an empty or absent badcases.jsonl) is not an error: the
output is written empty, a message says so, and the exit status is 0. A missing run
directory, a malformed file, a label that is not one of the above, or an unknown
verifier is one ``error:`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from rlvr.data.chat import DataError
from rlvr.eval.badcases import BADCASES_FILE, read_badcases
from rlvr.eval.relabel import label_rank, labels_ranker, make_ranker, verifier_ranker

__all__ = ["review_groups", "label_rank", "ranked_rows", "labels_ranker", "verifier_ranker", "main",
           "REVIEW_FILE", "PREFERENCES_FILE"]

REVIEW_FILE = "badcases_review.jsonl"
PREFERENCES_FILE = "badcases_preferences.jsonl"


def _prompt_id(case: dict[str, Any]) -> str:
    if case.get("uid"):
        return str(case["uid"])
    text = json.dumps(case.get("messages"), sort_keys=True)
    return "p" + hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def review_groups(cases: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bad cases grouped per prompt, identical answers merged (kinds, reasons and steps united)."""
    groups: dict[str, dict[str, Any]] = {}
    for case in cases:
        key = _prompt_id(case)
        group = groups.setdefault(key, {"id": key, "messages": case.get("messages") or [],
                                        "reference": case.get("reference"), "verifier": case.get("verifier"),
                                        **({"fields": case["fields"]} if case.get("fields") else {}),
                                        "answers": []})
        same = next((a for a in group["answers"] if a["text"] == case["completion"]), None)
        if same is None:
            group["answers"].append({"text": case["completion"], "label": "", "kinds": list(case.get("kinds", [])),
                                     "reasons": [case.get("reason", "")], "steps": [case.get("step")],
                                     "split": case.get("split"), "scores": case.get("scores", {}),
                                     "verdicts": case.get("verdicts", {})})
            continue
        same["kinds"] = list(dict.fromkeys(same["kinds"] + list(case.get("kinds", []))))
        same["reasons"] = list(dict.fromkeys(same["reasons"] + [case.get("reason", "")]))
        same["steps"] = sorted(set(same["steps"]) | {case.get("step")}, key=lambda s: (s is None, s))
    return list(groups.values())


def ranked_rows(groups: list[dict[str, Any]], ranks: list[list[Optional[float]]], origin: str
                ) -> tuple[list[dict[str, Any]], collections.Counter]:
    """Canonical preference rows, and the drops counted by reason (too_few_answers, all_tie)."""
    rows, drops = [], collections.Counter()
    for group, group_ranks in zip(groups, ranks):
        answers = [{"text": a["text"], "rank": r} for a, r in zip(group["answers"], group_ranks) if r is not None]
        if len(answers) < 2:
            drops["too_few_answers"] += 1
        elif len({a["rank"] for a in answers}) < 2:
            drops["all_tie"] += 1
        else:
            for a in answers:
                a["rank"] = int(a["rank"]) if float(a["rank"]).is_integer() else a["rank"]
            rows.append({"id": f"{origin}/{group['id']}", "messages": group["messages"], "answers": answers,
                         "origin": origin})
    return rows, drops


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    os.replace(tmp, path)


def _read_review(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"--reviewed {path}: no such file; write it with `rlvr-badcases RUN_DIR` first")
    groups = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path}:{n}: not a JSON row") from None
        if not isinstance(row, dict) or not isinstance(row.get("answers"), list) or "id" not in row:
            raise DataError(f"{path}:{n}: a review row needs 'id' and a list of 'answers' (each with 'text' and "
                            f"'label')")
        if any(not isinstance(a, dict) or "text" not in a for a in row["answers"]):
            raise DataError(f"{path}:{n}: every answer needs 'text' (and a 'label')")
        groups.append(row)
    return groups


def _options(pairs: Sequence[str], typed: bool = False) -> dict[str, Any]:
    """``--opt key=value`` pairs; ``typed``: each value read as YAML (numbers, booleans, lists)."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DataError(f"--opt {pair!r}: write key=value")
        try:
            out[key] = yaml.safe_load(value) if typed else value
        except yaml.YAMLError:
            raise DataError(f"--opt {pair!r}: the value is not valid YAML") from None
    return out


def _ranker(args: argparse.Namespace):
    """The relabeller the arguments choose (`rlvr.eval.relabel`), checked before anything is read."""
    if args.reviewed:
        return labels_ranker
    if args.relabel_verifier:
        return verifier_ranker(args.relabel_verifier, _options(args.opt), args.rank_by_detail, args.timeout)
    kind, name = ("rule", args.relabel_rule) if args.relabel_rule else ("judge", "judge")
    return make_ranker(kind, name, _options(args.opt, typed=True), timeout=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlvr-badcases", description="Bad cases -> review file -> preference rows.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by rlvr-train")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--reviewed", metavar="FILE", help="a review file with labels filled in -> preference rows")
    how.add_argument("--relabel-verifier", metavar="NAME", help="rank answers with this registered verifier "
                                                                "(`verifier` = each row's own) -> preference rows")
    how.add_argument("--relabel-rule", metavar="NAME", help="rank answers by this registered rule's score "
                                                            "-> preference rows")
    how.add_argument("--relabel-judge", action="store_true", help="rank answers by an LLM judge's score (its "
                     "options with --opt: base_url, model, items, ...) -> preference rows")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="the relabeller's option (repeatable)")
    p.add_argument("--rank-by-detail", metavar="KEY", help="break reward ties by this number in verdict details")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per verification (default 10)")
    p.add_argument("--out", metavar="FILE", help=f"output (default RUN_DIR/{REVIEW_FILE} or RUN_DIR/{PREFERENCES_FILE})")
    return p


def run(args: argparse.Namespace) -> Path:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory; pass the directory rlvr-train wrote (runs/<run_name>)")
    if not args.reviewed and not any((run_dir / name).is_file() for name in (BADCASES_FILE, "metrics.jsonl")):
        raise DataError(f"{run_dir}: not a run directory (no {BADCASES_FILE}, no metrics.jsonl); pass the directory "
                        f"rlvr-train wrote (runs/<run_name>)")
    origin = f"badcases:{run_dir.resolve().name}"
    if args.relabel_verifier and args.relabel_verifier != "verifier":
        from rlvr.config import check_verifier

        check_verifier("--relabel-verifier", args.relabel_verifier, _options(args.opt))  # before anything is read
    relabel = args.reviewed or args.relabel_verifier or args.relabel_rule or args.relabel_judge
    ranker = _ranker(args) if relabel else None  # a rule's or judge's options are checked here, before any read
    if args.reviewed:
        groups, source = _read_review(Path(args.reviewed)), f"labels in {args.reviewed}"
    else:
        try:
            groups, source = review_groups(read_badcases(run_dir / BADCASES_FILE)), str(run_dir / BADCASES_FILE)
        except ValueError as exc:
            raise DataError(str(exc)) from None
    preferences = ranker is not None
    out = Path(args.out) if args.out else run_dir / (PREFERENCES_FILE if preferences else REVIEW_FILE)
    if not groups:
        _write_jsonl(out, [])
        print(f"no bad cases in {source}: nothing to review; wrote an empty {out}")
        return out
    if not preferences:
        _write_jsonl(out, groups)
        n = sum(len(g["answers"]) for g in groups)
        print(f"{n} bad cases over {len(groups)} prompts -> {out}\nfill in each answer's label (good / bad / a rank, "
              f"0 best), then: rlvr-badcases {run_dir} --reviewed {out}")
        return out
    ranks = ranker(groups)
    left_out = sum(r is None for group in ranks for r in group)
    rows, drops = ranked_rows(groups, ranks, origin)
    if left_out and not args.reviewed:
        drops["answers_left_out_by_the_relabeller"] = left_out
    _write_jsonl(out, rows)
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "none"
    print(f"{len(groups)} prompts -> {len(rows)} preference rows (origin {origin}); dropped: {dropped} -> {out}")
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    from rlvr.errors import exit_on_user_error

    args = build_parser().parse_args(argv)
    with exit_on_user_error():
        run(args)


if __name__ == "__main__":
    main()
