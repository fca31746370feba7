"""Supervised fine-tuning steps on reference completions, through a learner backend.

One step: ``batch_size`` prompts with their target completions (a row's ``solution``,
or the last assistant turn of its chat ``messages``), next-token loss on the target
tokens only (target + its closing token, the template's end of turn), micro-batched with
exact accumulation, one optimizer step on the backend. Log-probs come from the same
memory-light path as the RL learner (`rlvr.learner.logprobs`), so positions, padding and
chat rendering are identical.

``stop_at_accuracy`` ends the stage once greedy accuracy on a probe of training
prompts reaches a target. The probe is scored by the verifier pool (hard deadlines),
and its failures are counted by reason, never swallowed. Small models learn
arithmetic with a sudden jump, so the embedded default stops at a mediocre model,
leaving RL something to fix.

With tools offered (``rollout.tools``), targets that show tool use are laid out as the rollouts lay
them out (the tool's output inserted through the template's tool turn, no target on it), and the
probe runs the same multi-turn rollout as training and evaluation, so the tool answers its calls.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Optional

import torch

from rlvr.config import SFTConfig, ToolsConfig
from rlvr.data.chat import render_prompts
from rlvr.data.sources import PromptStream
from rlvr.learner.base import Backend
from rlvr.learner.logprobs import token_logprobs
from rlvr.learner.targets import sft_batch
from rlvr.rollout.base import SamplingParams
from rlvr.rollout.hf import HFEngine
from rlvr.rollout.multiturn import generate_for, with_tools

__all__ = ["SupervisedStage"]


class SupervisedStage:
    """Steps of next-token loss on targets; `probe` measures greedy accuracy by the verifiers."""

    def __init__(self, backend: Backend, tokenizer: Any, prompts: Any, cfg: SFTConfig, micro_batch_size: int,
                 seed: int, scorer: Optional[Any] = None, max_new_tokens: int = 32,
                 tools: Optional[ToolsConfig] = None):
        self.backend, self.tokenizer, self.cfg = backend, tokenizer, cfg
        self.tools = tools if tools is not None and tools.enabled else None
        self.inserter = None
        if self.tools is not None:
            from rlvr.tools.insert import Inserter

            self.inserter = Inserter(tokenizer, self.tools.response_format, self.tools.role)
        self.micro, self.max_new_tokens, self.scorer = micro_batch_size, max_new_tokens, scorer
        self.stream = PromptStream(prompts, seed)
        self.probe_prompts = (PromptStream(prompts, seed + 1).take(cfg.probe_size)
                              if cfg.stop_at_accuracy > 0 or scorer is not None else [])
        self.probe_failures: Counter[str] = Counter()

    def step(self) -> dict[str, float]:
        """One optimizer step; returns loss (mean per target token), grad norm, lr, target tokens."""
        self.backend.module.train()
        batch = sft_batch(self.tokenizer, self.stream.take(self.cfg.batch_size), self.inserter)
        total = float(batch.completion_mask.sum())
        loss_sum = 0.0
        for start in range(0, len(batch), self.micro):
            part = batch.select(torch.arange(start, min(start + self.micro, len(batch)))).trimmed()
            logp, _ = token_logprobs(self.backend.forward, part, 1.0, None, self.backend.device)
            loss = -(logp * part.completion_mask.to(logp.device)).sum() / total
            self.backend.backward(loss)
            loss_sum += loss.item()
        grad_norm = self.backend.step()
        return {"sft/loss": loss_sum, "sft/grad_norm": grad_norm, "sft/lr": self.backend.lr, "sft/tokens": total}

    def probe(self) -> float:
        """Greedy accuracy on the probe prompts, scored in the verifier pool (failures counted)."""
        if not self.probe_prompts or self.scorer is None:
            return float("nan")
        engine = HFEngine(self.backend.module, self.tokenizer, batch_size=0)
        if self.tools is not None:  # the rollouts' own multi-turn engine: the tools answer the probe's calls
            engine = with_tools(engine, self.tokenizer, self.tools, self.backend.module)
        try:
            out = generate_for(engine, render_prompts(self.tokenizer, self.probe_prompts),
                               SamplingParams(greedy=True, max_new_tokens=self.max_new_tokens),
                               None, self.probe_prompts)
        finally:
            engine.close()
        result = self.scorer.score(self.probe_prompts, out.texts)
        self.probe_failures.update(r for r in result.gate_reasons() if r in ("timeout", "crash", "error"))
        return result.passed.float().mean().item() if result.passed is not None else float("nan")

    def run(self, steps: int, start: int = 0, log=print, on_step=None) -> int:
        """Steps ``start+1 .. steps`` (stopping early at ``stop_at_accuracy``); returns the last step run."""
        step = start
        for step in range(start + 1, steps + 1):
            metrics = self.step()
            if self.cfg.stop_at_accuracy > 0 and step % self.cfg.check_every == 0:
                metrics["sft/probe_accuracy"] = acc = self.probe()
                if acc >= self.cfg.stop_at_accuracy:
                    log(f"[sft] step {step}: probe accuracy {acc:.3f} >= sft.stop_at_accuracy="
                        f"{self.cfg.stop_at_accuracy}; done")
                    if on_step:
                        on_step(step, metrics)
                    break
            if on_step:
                on_step(step, metrics)
        if self.probe_failures:
            log(f"[sft] probe scoring failures: {dict(self.probe_failures)}")
        self.backend.module.eval()
        return step

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.stream.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state["data"])
