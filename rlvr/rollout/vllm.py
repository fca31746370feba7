"""Rollouts through an in-process, colocated vLLM engine holding its own copy of the weights.

**What it returns.** The engine protocol of `rlvr.rollout.base`: ``n`` completions per
prompt, consecutive; prompts left-padded, completions right-padded; every id of the
engine's ``eos_ids`` is a vLLM stop token, and the mask covers the tokens up to and
including the first of them (a finish, not a truncation); per-token log-probs are
``log softmax(z / T)`` of the sampled token over the whole vocabulary (vLLM's
``logprobs_mode="processed_logprobs"`` with ``logprobs=0``; T = 1 for greedy).
**top_p < 1 is refused** (`ConfigError` when `generate` is called with it): under a
nucleus vLLM reports the *renormalized* nucleus log-prob, not the full-vocabulary one the
learner recomputes, and this engine never returns a different quantity than the contract's.

**Stop strings** (``SamplingParams.stop``, a tool call's end in multi-turn rollouts): vLLM gets them
with ``include_stop_str_in_output=True`` and decodes (only those requests) with the rollouts' own
tokenizer, saved for it when the engine is built; vLLM 0.32 returns the ids up to and including
the token that completed the stop string (ids a step appended past it are dropped, with their
log-probs). The engine then cuts every completion by the rule the ``hf`` engine decodes by
(`rlvr.rollout.stops`), so both engines end a completion at the same token whatever vLLM
returned; a stop is a finish, not a truncation. Prompts are always token ids (vLLM's
``TokensPrompt``), never text: a multi-turn continuation is its exact sampled and inserted ids.

**Seeds.** Every completion is its own vLLM request with its own ``seed``, derived from
``(seeds[i], j)`` by `rlvr.rollout.sampling.row_keys`: a completion's draws do not depend
on the other requests of the batch. (vLLM's kernels are not batch-invariant, so logits
can differ in the last bits between batch compositions; on CPU in fp32 that has not
changed a sampled token in our tests.) Engine start-up leaves the global RNGs (torch,
CUDA, numpy, random) and torch's thread count as they were, so a resumed run is exact.

**Weight sync.** `update_weights(source, version)` streams ``source.named_tensors()`` through ONE
call, ``collective_rpc("reload_weights", weights_iterator=..., is_checkpoint_format=True)`` (in
memory, tensors by reference; no disk), checking names and full shapes on the way and raising
`IncompletePushError` after the call unless the policy's whole state dict went in
(`rlvr.rollout.vllm_sync`: what a failed check leaves in the engine, and why it is not raised
mid-stream); an engine whose last push failed refuses to generate. Then the prefix cache is reset
and vLLM's weight version set (``llm_engine.set_weight_version``; "0", the weights it was built
from, until the first push), so every completion carries it in ``weight_versions``: the batch is
stamped with what vLLM reports (never the engine's own counter) and the loop refuses a batch whose
version is not the learner's.

**Placement and versions** (`rlvr.rollout.vllm_build`): one engine per rank on ``cuda:LOCAL_RANK``
(vLLM's external launcher under torchrun); vLLM >= 0.32 is required.

**Sleep (GPU, sleep_level > 0).** The call order is::

    wake()                      -> llm.wake_up(tags=["weights"])
    update_weights(src, v)      -> reload_weights(all tensors), reset_prefix_cache, set_weight_version
    generate(...)               -> [level 2 and no push since waking: reload_weights again]
                                   llm.wake_up(tags=["kv_cache"]); llm.generate(...)
    sleep()                     -> llm.sleep(level)

Weights are never written while asleep (`update_weights` wakes them first). On CPU vLLM
has no sleep mode: the four calls are plain (sleep/wake do nothing).
"""
from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from rlvr.config import ConfigError
from rlvr.models.eos import end_of_sequence_ids
from rlvr.models.lora import plain_shapes
from rlvr.rollout.base import RolloutBatch, SamplingParams, StaleWeightsError, WeightSource
from rlvr.rollout.hf import left_pad
from rlvr.rollout.sampling import row_keys
from rlvr.rollout.stops import first_stop
from rlvr.rollout.vllm_build import build_llm
from rlvr.rollout.vllm_sync import IncompletePushError, PushStream, completion_versions

__all__ = ["VLLMEngine", "IncompletePushError"]

_DTYPES = {None: "float32", torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def vllm_sampling_params(**kwargs: Any) -> Any:
    """``vllm.SamplingParams(**kwargs)`` (a module function, so tests without vLLM can replace it)."""
    from vllm import SamplingParams as VSamplingParams

    return VSamplingParams(**kwargs)


def _tokenizer_copy(tokenizer: Any, model_dir: Any) -> Optional[str]:
    """A temporary directory holding the rollouts' own tokenizer, which vLLM decodes with (for stop strings only),
    not whatever tokenizer ``model_dir`` holds; with the model's config.json, which vLLM reads there too."""
    if model_dir is None:
        return None  # build_llm refuses it
    directory = tempfile.mkdtemp(prefix="rlvr-vllm-tokenizer-")
    tokenizer.save_pretrained(directory)
    config = Path(model_dir) / "config.json"
    if config.is_file():
        shutil.copy(config, directory)
    return directory


class VLLMEngine:
    """A colocated `vllm.LLM` behind the engine protocol (see the module doc for its contracts).

    ``llm`` injects an already built engine (tests pass a fake); otherwise one is built
    from ``model_dir`` (a Hugging Face directory holding the policy's current weights).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, autocast_dtype: Optional[torch.dtype] = None,
                 model_dir: Any = None, seed: int = 0, gpu_memory_utilization: float = 0.3,
                 max_model_len: int = 2048, dtype: str = "auto", enable_prefix_caching: bool = True,
                 enforce_eager: bool = True, sleep_level: int = 1, cpu_kv_cache_gib: int = 1,
                 llm: Any = None, on_gpu: Optional[bool] = None):
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token; set one (tokenizer.eos_token) so generation can stop")
        if sleep_level not in (0, 1, 2):
            raise ConfigError(f"rollout.vllm.sleep_level={sleep_level}: use 0 (never sleep), 1 or 2")
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = end_of_sequence_ids(tokenizer, getattr(model, "generation_config", None))
        self.weight_version = 0
        self.max_model_len = max_model_len
        # full shapes, also of ZeRO-3 partitioned parameters (their local tensor is a shard; `ds_shape` is whole)
        # (an adapted policy's by the base model's names: the engine receives merged weights)
        self.expected = plain_shapes(model)
        device = next(model.parameters()).device
        self.on_gpu = device.type == "cuda" if on_gpu is None else on_gpu
        self.sleep_level = sleep_level if self.on_gpu else 0
        self._weights_awake = self._kv_awake = True  # a fresh engine is awake
        self._source: Optional[WeightSource] = None
        self._needs_push = False  # level 2 discarded the weights: push before generating
        self._failed_push: Optional[str] = None  # why the last push left the engine's weights mixed (if it did)
        self._tokenizer_dir: Optional[str] = None
        if llm is None:
            self._tokenizer_dir = _tokenizer_copy(tokenizer, model_dir)
            if self._tokenizer_dir is not None:  # removed by close(), else when collected or at exit
                weakref.finalize(self, shutil.rmtree, self._tokenizer_dir, True)
            options = dict(gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                           dtype=_DTYPES.get(autocast_dtype, "float32") if dtype == "auto" else dtype,
                           enable_prefix_caching=enable_prefix_caching, enforce_eager=enforce_eager,
                           enable_sleep_mode=self.sleep_level > 0, seed=seed, tokenizer=self._tokenizer_dir)
            try:
                llm = build_llm(model_dir, options, self.on_gpu, cpu_kv_cache_gib)
            except BaseException:
                shutil.rmtree(self._tokenizer_dir or "", ignore_errors=True)
                raise
            self.max_model_len = options["max_model_len"]  # capped at the model's positions
        self.llm = llm
        self._set_version(0)  # the weights it was built from, until the first push

    # ---- weights and memory ---------------------------------------------------------
    def update_weights(self, source: WeightSource, version: int) -> None:
        """Load the complete ``source.named_tensors()`` in one call, reset the prefix cache, set ``version``."""
        if not self._weights_awake:
            self._wake_weights()
        self._push(source)
        self._source = source
        self._set_version(version)

    def _push(self, source: WeightSource) -> None:
        """One reload call over the checked stream of ``source.named_tensors()`` (see `rlvr.rollout.vllm_sync`)."""
        stream = PushStream(source.named_tensors(), self.expected)
        self._failed_push = "a weight push was interrupted"  # until it is known to be complete
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(stream),
                                                              "is_checkpoint_format": True})
        finally:
            stream.drain()  # every rank makes every ZeRO-3 gather, also when vLLM raised or stopped reading
        self.llm.reset_prefix_cache()
        try:
            stream.verdict()
        except IncompletePushError as exc:
            self._failed_push = str(exc)
            raise
        self._failed_push = None
        self._needs_push = False

    def _set_version(self, version: int) -> None:
        self.weight_version = version
        self.llm.llm_engine.set_weight_version(str(version))  # stamped on every output from now on

    def _wake_weights(self) -> None:
        self.llm.wake_up(tags=["weights"])
        self._weights_awake = True
        self._needs_push = self.sleep_level == 2  # those weights are garbage until pushed again

    def wake(self) -> None:
        """Reclaim the weights' memory (GPU with sleep); the KV cache comes back right before generating."""
        if self.sleep_level and not self._weights_awake:
            self._wake_weights()

    def sleep(self) -> None:
        """Free the KV cache (and offload, level 1, or discard, level 2, the weights) while the learner trains."""
        if self.sleep_level and (self._weights_awake or self._kv_awake):
            self.llm.sleep(level=self.sleep_level)
            self._weights_awake = self._kv_awake = False

    def close(self) -> None:
        """Shut vLLM down now (its process groups too, and torch.distributed's with them: call it last), not in a
        finalizer at interpreter exit, which would find the trainer's process group already destroyed."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        self.llm = None
        if self._tokenizer_dir is not None:
            shutil.rmtree(self._tokenizer_dir, ignore_errors=True)
            self._tokenizer_dir = None

    # ---- generation -----------------------------------------------------------------
    def _ready(self) -> None:
        """Before generating: weights complete, awake and current (re-pushed after level 2), then the KV cache."""
        if self._failed_push is not None:
            raise StaleWeightsError(f"vLLM will not generate after a failed weight push ({self._failed_push}); "
                                    f"push the complete weights first")
        if not self._weights_awake:
            self._wake_weights()
        if self._needs_push:
            if self._source is None:
                raise StaleWeightsError("vLLM woke from sleep level 2 with no weight source to push again; "
                                        "call update_weights first")
            self._push(self._source)
        if not self._kv_awake:
            self.llm.wake_up(tags=["kv_cache"])
            self._kv_awake = True

    def requests(self, prompts: Sequence[Sequence[int]], params: SamplingParams, seeds: Sequence[int]):
        """(vLLM prompts, vLLM sampling params): one request per completion, completion j of prompt i seeded by
        ``row_keys(seeds, n)``."""
        if not params.greedy and params.top_p < 1.0:
            raise ConfigError(f"rollout.top_p={params.top_p} with rollout.engine=vllm: under top_p < 1 vLLM reports "
                              f"the renormalized nucleus log-prob, not the full-vocabulary one the learner "
                              f"recomputes; use rollout.top_p=1.0 (or rollout.engine=hf, which supports top_p)")
        for p in prompts:
            if len(p) + (1 if params.fit_context else params.max_new_tokens) > self.max_model_len:
                raise ConfigError(f"a prompt of {len(p)} tokens + rollout.max_new_tokens={params.max_new_tokens} "
                                  f"exceeds rollout.vllm.max_model_len={self.max_model_len}; raise it")
        keys = row_keys(seeds, params.n)
        # token ids, never text: a multi-turn continuation is the exact sampled + inserted ids (TokensPrompt)
        inputs = [{"prompt_token_ids": list(p)} for p in prompts for _ in range(params.n)]
        stops = list(params.stop)
        common = dict(stop_token_ids=sorted(self.eos_ids), logprobs=0, detokenize=bool(stops),
                      skip_special_tokens=False)
        if stops:  # vLLM stops early; `_batch` re-applies the engines' common rule to the ids it returns
            common.update(stop=stops, include_stop_str_in_output=True)
        budgets = [min(params.max_new_tokens, self.max_model_len - len(x["prompt_token_ids"])) for x in inputs]
        if params.greedy:
            sampling = [vllm_sampling_params(temperature=0.0, max_tokens=m, **common) for m in budgets]
        else:
            sampling = [vllm_sampling_params(temperature=params.temperature, top_p=1.0, top_k=-1, max_tokens=m,
                                             seed=int(k >> np.uint64(1)), **common) for k, m in zip(keys, budgets)]
        return inputs, sampling

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams,
                 seeds: Optional[Sequence[int]] = None) -> RolloutBatch:
        if seeds is None:  # drawn from the global RNG: reproducible under torch.manual_seed
            seeds = torch.randint(0, 2**62, (len(prompts),)).tolist()
        inputs, sampling = self.requests(prompts, params, seeds)
        self._ready()
        outputs = self.llm.generate(inputs, sampling_params=sampling, use_tqdm=False)
        return self._batch([p for p in prompts for _ in range(params.n)], outputs, tuple(params.stop))

    def _batch(self, prompts: list[Sequence[int]], outputs: list[Any], stops: tuple[str, ...] = ()) -> RolloutBatch:
        ids, mask = left_pad(prompts, self.pad_id)
        rows = [self._row(out.outputs[0], stops) for out in outputs]
        width = max(1, max(len(out.outputs[0].token_ids) for out in outputs))
        completion = torch.full((len(outputs), width), self.pad_id, dtype=torch.long)
        logprobs = torch.zeros((len(outputs), width), dtype=torch.float32)
        cmask = torch.zeros((len(outputs), width), dtype=torch.float32)
        truncated = torch.zeros(len(outputs), dtype=torch.bool)
        for i, (tokens, lps, finished) in enumerate(rows):
            completion[i, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            logprobs[i, :len(tokens)] = torch.tensor(lps, dtype=torch.float32)
            cmask[i, :len(tokens)] = 1.0
            truncated[i] = not finished
        versions = set()
        for out in outputs:
            versions |= completion_versions(out.outputs[0])
        if len(versions) != 1:
            raise StaleWeightsError(f"vLLM outputs carry weight versions {sorted(versions)}; one batch must come "
                                    f"from one version")
        texts = self.tokenizer.batch_decode(completion, skip_special_tokens=True)
        return RolloutBatch(ids, mask, completion, cmask, logprobs, truncated, texts, versions.pop())

    def _row(self, sample: Any, stops: tuple[str, ...]) -> tuple[list[int], list[float], bool]:
        """(ids, log-probs, finished) of one completion: cut after its first end-of-sequence id or after the token
        that completes a stop string (`rlvr.rollout.stops`, the rule the hf engine decodes by), whichever comes
        first; either is a finish. vLLM already stops there (0.32 trims the ids past a stop string, and its
        log-probs with them); the cut makes the contract hold whatever vLLM returned."""
        tokens = list(sample.token_ids)
        lps = [step[t].logprob for t, step in zip(tokens, sample.logprobs)]
        end = next((k for k, t in enumerate(tokens) if t in self.eos_ids), -1)
        if stops:
            at = first_stop(self.tokenizer, tokens if end < 0 else tokens[:end + 1], stops)
            if at >= 0:
                end = at
            elif end < 0 and isinstance(getattr(sample, "stop_reason", None), str):
                end = len(tokens) - 1  # vLLM's detokenizer saw a stop string the window rule did not: its cut
        if end < 0:
            return tokens, lps, False
        return tokens[:end + 1], lps[:end + 1], True
