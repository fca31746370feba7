"""The watch's checks: one function per symptom, registered in `rlvr.eval.watch.WATCH_CHECKS`.

Each takes (view, memory, cfg) and returns a `Reading` (figures for ``watch/*`` and
conditions for ``alert/*``). The memory already holds this step's values. A threshold
of 0 turns its condition off; the figures are always computed. Samples are chosen only
when an alert is raised (their callables are lazy), so a quiet step costs only the figures.

    length                watch/length_ratio                 mean length / the start's (first steps)
    truncation            watch/truncated_frac               completions cut at max_new_tokens
    reward_length         watch/reward_length_corr/<rm>      Pearson(learned reward, length) in the batch
    diversity             watch/distinct2, watch/unique_frac within-group distinct-2 and distinct completions
    zero_spread           watch/zero_spread_frac             groups whose rewards are all equal
    entropy               watch/entropy_ratio                mean token entropy / the start's
    kl                    watch/kl_per_sequence              KL to the reference per completion (nats)
    learned_vs_checkable  watch/trend_z/<rm>, .../quality    Mann-Kendall z of the learned reward and of
                                                             the checkable quality over the last window
    rm_stats              watch/rm_outside_frac/<rm>,        RM raw scores against reward_stats.json
                          watch/rm_mean_z/<rm>,              (and the share above its saved p99 quantile)
                          watch/rm_above_p99/<rm>
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from rlvr.algo import zero_variance_groups
from rlvr.eval.config import WatchConfig
from rlvr.eval.stats import group_distinct2, group_unique_fraction, mann_kendall_z, pearson
from rlvr.eval.watch import Condition, Reading, StepView, WatchMemory

__all__ = ["top", "length_check", "truncation_check", "reward_length_check", "diversity_check",
           "zero_spread_check", "entropy_check", "kl_check", "learned_vs_checkable_check", "rm_stats_check"]


def top(values: torch.Tensor, among: Optional[torch.Tensor] = None, k: int = 64) -> list[int]:
    """Indices of the largest `values` (restricted to rows where `among` is True), largest first."""
    values = values.float().clone()
    if among is not None:
        values[~among] = -math.inf
    order = torch.argsort(values, descending=True, stable=True)[:k]
    return [i for i in order.tolist() if values[i] > -math.inf]


def _group_members(view: StepView, group: int) -> list[int]:
    return list(range(group * view.group_size, (group + 1) * view.group_size))


def length_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    start = memory.baseline(memory.lengths, cfg.baseline_steps)
    if not start:
        return Reading()
    ratio = memory.lengths[-1] / start
    holds = cfg.length_ratio_max > 0 and ratio > cfg.length_ratio_max
    msg = (f"mean completion length {memory.lengths[-1]:.1f} tokens is {ratio:.2f}x the start's {start:.1f} "
           f"(watch.length_ratio_max={cfg.length_ratio_max})")
    return Reading({"length_ratio": ratio}, [Condition("length_ratio", holds, msg, lambda: top(view.lengths))])


def truncation_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    frac = view.truncated.float().mean().item() if len(view.truncated) else 0.0
    holds = cfg.truncation_max > 0 and frac > cfg.truncation_max
    msg = f"{frac:.0%} of completions hit max_new_tokens (watch.truncation_max={cfg.truncation_max})"
    return Reading({"truncated_frac": frac},
                   [Condition("truncation", holds, msg, lambda: top(view.lengths, view.truncated))])


def reward_length_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    out = Reading()
    for label in view.learned:
        rows = view.result.rows(label)
        scores = view.result.per_source[label]
        corr = pearson(scores[rows], view.lengths[rows])
        out.figures[f"reward_length_corr/{label}"] = corr
        holds = cfg.reward_length_corr_max > 0 and math.isfinite(corr) and corr > cfg.reward_length_corr_max
        msg = (f"{label}'s reward correlates with completion length (r = {corr:.2f} within the batch; "
               f"watch.reward_length_corr_max={cfg.reward_length_corr_max})")

        def samples(s=scores, m=rows) -> list[int]:  # the longest among the completions it scores above its median
            return top(view.lengths, m & (s >= torch.quantile(s[m].float(), 0.5)))

        out.conditions.append(Condition(f"reward_length_corr/{label}", holds, msg, samples))
    return out


def diversity_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    g = view.group_size
    unique = torch.tensor(group_unique_fraction(view.texts, g))
    out = Reading({"unique_frac": unique.mean().item() if len(unique) else math.nan})
    per_group = {"unique_frac": unique}
    if view.completion_ids is not None and view.completion_mask is not None:
        distinct = group_distinct2(view.completion_ids, view.completion_mask, g)
        out.figures["distinct2"] = distinct.nanmean().item() if len(distinct) else math.nan
        per_group["distinct2"] = torch.nan_to_num(distinct, nan=1.0)
    if cfg.diversity_needs_learned and not memory.has_learned:
        return out
    limits = {"distinct2": cfg.distinct2_min, "unique_frac": cfg.unique_frac_min}
    for name, values in per_group.items():
        value, limit = out.figures[name], limits[name]
        holds = limit > 0 and math.isfinite(value) and value < limit
        msg = f"within-group {name} fell to {value:.2f} (watch.{name}_min={limit})"
        out.conditions.append(Condition(name, holds, msg,
                                        lambda v=values: _group_members(view, int(torch.argmin(v)))))
    return out


def zero_spread_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    if not len(view.result.rewards):
        return Reading()
    flat = zero_variance_groups(view.result.rewards, view.group_size, valid=view.result.valid())
    frac = flat.float().mean().item()
    holds = cfg.zero_spread_max > 0 and frac > cfg.zero_spread_max
    msg = (f"{frac:.0%} of groups have no reward spread: no learning signal "
           f"(watch.zero_spread_max={cfg.zero_spread_max})")
    samples = lambda: [int(i) * view.group_size for i in torch.nonzero(flat).flatten().tolist()]  # noqa: E731
    return Reading({"zero_spread_frac": frac}, [Condition("zero_spread", holds, msg, samples)])


def entropy_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    start = memory.baseline(memory.entropies, cfg.baseline_steps)
    if view.entropy is None or not start:
        return Reading()
    ratio = view.entropy / start
    holds = cfg.entropy_ratio_min > 0 and ratio < cfg.entropy_ratio_min
    msg = (f"mean token entropy {view.entropy:.3g} is {ratio:.2f}x the start's {start:.3g} "
           f"(watch.entropy_ratio_min={cfg.entropy_ratio_min})")

    def confident() -> list[int]:  # the highest mean sampling log-prob: the least exploratory completions
        if view.logprobs is None or view.completion_mask is None:
            return list(range(min(len(view.texts), cfg.samples_per_alert)))
        mask = view.completion_mask.float()
        return top((view.logprobs * mask).sum(-1) / mask.sum(-1).clamp(min=1))

    return Reading({"entropy_ratio": ratio}, [Condition("entropy_collapse", holds, msg, confident)])


def kl_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    if view.kl_per_sequence is not None and len(view.kl_per_sequence) == len(view.texts):
        per_seq = view.kl_per_sequence.float()
        value, samples = per_seq.mean().item(), (lambda: top(per_seq))
    elif view.kl is not None:
        value, samples = view.kl * (view.lengths.mean().item() if len(view.lengths) else 0.0), (
            lambda: top(view.lengths))
    else:
        return Reading()
    holds = cfg.kl_per_sequence_max > 0 and value > cfg.kl_per_sequence_max
    msg = f"KL to the reference is {value:.2f} nats per completion (watch.kl_per_sequence_max={cfg.kl_per_sequence_max})"
    return Reading({"kl_per_sequence": value}, [Condition("kl_per_sequence", holds, msg, samples)])


def _window(learned: list[Optional[float]], quality: list[Optional[float]], size: int) -> tuple[list, list]:
    pairs = [(a, b) for a, b in zip(learned, quality) if a is not None and b is not None]
    pairs = pairs[-size:]
    return [a for a, _ in pairs], [b for _, b in pairs]


def learned_vs_checkable_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    out, w = Reading(), cfg.trend_window
    for label in view.learned:
        series, quality = _window(memory.learned.get(label, []), memory.quality, w)
        if w < 3 or len(series) < w:
            continue
        z_learned, z_quality = mann_kendall_z(series), mann_kendall_z(quality)
        out.figures[f"trend_z/{label}"], out.figures["trend_z/quality"] = z_learned, z_quality
        holds = z_learned >= cfg.trend_z_rise and z_quality < cfg.trend_z_flat
        msg = (f"{label}'s reward rose over the last {w} steps (Mann-Kendall z = {z_learned:.2f}) while the "
               f"checkable quality did not (z = {z_quality:.2f}; watch.trend_z_rise={cfg.trend_z_rise}, "
               f"watch.trend_z_flat={cfg.trend_z_flat})")
        scores, passes = view.result.per_source[label], view.passes()

        def samples(s=scores, p=passes) -> list[int]:  # high learned reward, failed check
            return top(s, None if p is None else (p == 0)) or top(s)

        out.conditions.append(Condition(f"learned_vs_checkable/{label}", holds, msg, samples, patience=1))
    return out


def rm_stats_check(view: StepView, memory: WatchMemory, cfg: WatchConfig) -> Reading:
    out = Reading()
    for label in view.learned:
        stats = memory.rm_stats.get(label)
        rows = view.result.rows(label)
        if not stats or not bool(rows.any()):
            continue
        raw = view.result.raw.get(label, view.result.per_source[label]).float()
        mean, std = float(stats["mean"]), max(float(stats["std"]), 1e-6)
        low = float(stats.get("min", mean - 3 * std)) - cfg.rm_margin_std * std
        high = float(stats.get("max", mean + 3 * std)) + cfg.rm_margin_std * std
        outside = ((raw < low) | (raw > high)) & rows
        frac = outside[rows].float().mean().item()
        z = (raw[rows].mean().item() - mean) / std
        out.figures[f"rm_outside_frac/{label}"], out.figures[f"rm_mean_z/{label}"] = frac, z
        if isinstance(stats.get("p99"), (int, float)):  # ~0.01 for scores like the ones it was trained on
            out.figures[f"rm_above_p99/{label}"] = (raw[rows] > float(stats["p99"])).float().mean().item()
        holds = ((cfg.rm_outside_frac_max > 0 and frac > cfg.rm_outside_frac_max)
                 or (cfg.rm_mean_z_max > 0 and abs(z) > cfg.rm_mean_z_max))
        msg = (f"{label}'s scores left the range it was trained on: {frac:.0%} outside [{low:.3g}, {high:.3g}], "
               f"batch mean {z:+.2f} saved std from the saved mean (watch.rm_outside_frac_max="
               f"{cfg.rm_outside_frac_max}, watch.rm_mean_z_max={cfg.rm_mean_z_max})")
        out.conditions.append(Condition(f"rm_outside_stats/{label}", holds, msg,
                                        lambda r=raw, o=outside: top((r - mean).abs(), o)))
    return out
