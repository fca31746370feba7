"""Rubrics: what "good" means for a run, as named, weighted dimensions (``rubric=NAME``).

A rubric is a Hydra group (``conf/rubric/NAME.yaml``, or ``--config-dir`` for your
own); each dimension has a ``name`` (its label in metrics: ``reward/<name>/mean``), a
``description``, a ``weight`` and a ``kind``:

    verifier   a registered verifier (``check``: math, code, exact, format, ...; ``verifier`` = each
               row's own); it decides pass/fail
    rule       a registered Python check (``check``: a rule of `rlvr.rewards.rule.RULES`)
    rm         a reward-model directory (``path``), scored as a ``model`` source
    judge      an LLM judge, over an OpenAI-compatible endpoint (``options``: base_url, model) or
               in-process (``options.path``), scoring, ranking or comparing answers (``options.mode``;
               `rlvr.rewards.judge`); its items default to the dimension itself

Every dimension becomes one entry of ``reward.sources`` (`dimension_sources`), so each
has its own reward curve, reasons and evaluation mean. A weight of 0 keeps a dimension
measured and reported but not rewarded.

**A rubric and ``reward.sources``.** Selecting a rubric *replaces* ``reward.sources``,
which must then be left at its default (the row's verifier); a run that sets both is
refused (put the extra sources into the rubric as dimensions instead). ``validate``
applies the rubric (`apply_rubric`) before it checks any source, so everything after it
(the scorer, the watch, evaluation) sees the derived sources; applying it twice is a no-op.

**Version.** A rubric's version is a content hash of its dimensions (names, kinds,
weights, checks, paths, options, descriptions), prefixed by its optional human
``version`` label: ``v2+3f9c0a1b2c4d``. Any change to a dimension changes the hash, so
runs (and the judge's result cache) never mix two rubrics under one name.
`rubric_banner` is the start-up line, `rubric_record` what a run's config/summary
records.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from rlvr.config import ConfigError
from rlvr.eval.config import RubricConfig, RubricDimension
from rlvr.registry import Registry, RegistryError

if TYPE_CHECKING:
    from rlvr.config import RewardSource, TrainConfig

__all__ = ["RubricDimension", "RubricConfig", "DIMENSION_KINDS", "DimensionKind", "rubric_version",
           "dimension_sources", "apply_rubric", "check_rubric", "rubric_banner", "rubric_record", "RUBRIC_FILE"]

RUBRIC_FILE = "rubric.json"  # what `write_rubric` puts in a run directory
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # metric-safe: reward/<name>/mean


def _error(message: str) -> Exception:
    return ConfigError(message)


# ---- the dimension kinds: how each becomes a reward source, and its own checks --------------
@dataclass(frozen=True)
class DimensionKind:
    source_kind: str  # the reward-source kind it becomes (rlvr.rewards.base.SOURCE_KINDS)
    check: Optional[str]  # the dimension's `check` when it leaves it null
    uses: tuple[str, ...]  # which of check / path the kind reads (the others must stay null)
    extra: Callable[[str, RubricDimension], None]  # kind-specific checks, naming the dimension (the judge's
    #                                                 options and endpoint are checked with the derived sources)


def _no_extra(where: str, dim: RubricDimension) -> None:
    pass


def _check_rm_dir(where: str, dim: RubricDimension) -> None:
    """The reward-model directory exists, is a model, and its options fit it (the same check as a ``model``
    reward source's)."""
    from rlvr.config import RewardSource
    from rlvr.rewards.model import check_model_source

    check_model_source(where, RewardSource(name=dim.name, kind="model", path=dim.path, options=dim.options))


def _check_verifier(where: str, dim: RubricDimension) -> None:
    from rlvr.config import check_verifier

    if dim.check not in (None, "verifier"):  # the row's own verifier is checked with data.verifier
        check_verifier(where, dim.check, dim.options)


def _check_rule(where: str, dim: RubricDimension) -> None:
    from rlvr.rewards.rule import check_rule_options

    check_rule_options(where, str(dim.check), dim.options)


DIMENSION_KINDS: Registry[DimensionKind] = Registry("rubric.dimensions[].kind", {
    "verifier": DimensionKind("verifier", "verifier", ("check",), _check_verifier),
    "rule": DimensionKind("rule", None, ("check",), _check_rule),
    "rm": DimensionKind("model", None, ("path",), _check_rm_dir),
    "judge": DimensionKind("judge", None, (), _no_extra),
})


def _payload(rubric: RubricConfig) -> list[dict[str, Any]]:
    return [asdict(d) for d in rubric.dimensions]


def rubric_version(rubric: RubricConfig) -> str:
    """``[label+]hash``: 12 hex digits of the dimensions' content (names, kinds, weights, options, ...)."""
    text = json.dumps(_payload(rubric), sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{rubric.version}+{digest}" if rubric.version else digest


def _judge_options(dim: RubricDimension, version: str) -> dict[str, Any]:
    options = dict(dim.options)
    options.setdefault("items", [{"name": dim.name, "description": dim.description or dim.name}])
    options["rubric_version"] = version  # part of the judge's cache key
    return options


def dimension_sources(rubric: RubricConfig) -> list["RewardSource"]:
    """One reward source per dimension, in the rubric's order (kinds already checked)."""
    from rlvr.config import RewardSource

    version, out = rubric_version(rubric), []
    for dim in rubric.dimensions:
        kind = DIMENSION_KINDS.lookup(dim.kind)
        options = _judge_options(dim, version) if kind.source_kind == "judge" else dict(dim.options)
        out.append(RewardSource(name=dim.name, weight=float(dim.weight), options=options, kind=kind.source_kind,
                                path=dim.path, check=dim.check or kind.check))
    return out


def check_rubric(rubric: RubricConfig) -> None:
    """Names, kinds, weights and each kind's own fields; the derived sources are checked by `check_names`."""
    where = f"rubric {rubric.name or '(unnamed)'}"
    if not rubric.dimensions:
        raise _error(f"{where} has no dimensions; add at least one under rubric.dimensions")
    seen: set[str] = set()
    for i, dim in enumerate(rubric.dimensions):
        at = f"{where}: dimension {i} ({dim.name})"
        if not _NAME.match(dim.name or "") or dim.name == "???":
            raise _error(f"{at}: name {dim.name!r} must be letters, digits, _ . or - (it is a metric label)")
        if dim.name in seen:
            raise _error(f"{at}: the name {dim.name!r} is used twice; dimension names are unique")
        seen.add(dim.name)
        try:
            kind = DIMENSION_KINDS.lookup(dim.kind)
        except RegistryError as exc:
            raise _error(f"{at}: {exc}") from None
        if not (dim.weight >= 0 and dim.weight != float("inf")):
            raise _error(f"{at}: weight {dim.weight} must be a finite number >= 0 (0 = reported, not rewarded)")
        for name in ("check", "path"):
            if getattr(dim, name) is not None and name not in kind.uses:
                raise _error(f"{at}: kind {dim.kind} has no {name}; remove it (the kind uses: "
                             f"{', '.join(kind.uses) or 'options only'})")
        if "check" in kind.uses and kind.check is None and not dim.check:
            raise _error(f"{at}: kind {dim.kind} needs check: the name of a registered {dim.kind}")
        kind.extra(at, dim)
    if not any(d.weight > 0 for d in rubric.dimensions):
        raise _error(f"{where}: every weight is 0, so nothing is rewarded; give at least one dimension a weight > 0")


def apply_rubric(cfg: "TrainConfig") -> bool:
    """Replace ``reward.sources`` by the rubric's dimensions (idempotent); False when no rubric is selected.

    Refuses a config that also sets ``reward.sources`` to anything but the default.
    """
    from rlvr.config import RewardSource

    rubric = cfg.rubric
    if not rubric.dimensions and rubric.name is None:
        return False
    check_rubric(rubric)
    derived = dimension_sources(rubric)
    truth = cfg.reward.truth.source  # the truth's weight-0 verifier, when validation added it (`apply_truth`)
    given = [s for s in cfg.reward.sources if truth is None or s != RewardSource(name=truth, weight=0.0)]
    if given not in ([RewardSource()], derived):
        names = ", ".join(s.name for s in cfg.reward.sources)
        raise _error(f"rubric {rubric.name} defines the reward sources, but reward.sources is also set ({names}); "
                     f"add those sources to the rubric as dimensions, or drop the rubric (rubric=null)")
    if given != derived:  # the first application: say it once, at start-up
        print(rubric_banner(cfg), flush=True)
    cfg.reward.sources = derived
    return True


def rubric_record(cfg: "TrainConfig") -> Optional[dict[str, Any]]:
    """What a run records about its rubric (summary.json's ``rubric``), or None without one."""
    rubric = cfg.rubric
    if not rubric.dimensions:
        return None
    return {"name": rubric.name, "version": rubric_version(rubric), "label": rubric.version,
            "dimensions": [{"name": d.name, "kind": d.kind, "weight": d.weight, "description": d.description}
                           for d in rubric.dimensions]}


def rubric_banner(cfg: "TrainConfig") -> Optional[str]:
    """The start-up line: ``rubric: math v1+3f9c... (3 dimensions: correctness verifier 1.0, ...)``."""
    record = rubric_record(cfg)
    if record is None:
        return None
    dims = ", ".join(f"{d['name']} {d['kind']} {d['weight']:g}" for d in record["dimensions"])
    return f"rubric: {record['name']} {record['version']} ({len(record['dimensions'])} dimensions: {dims})"


def write_rubric(run_dir: str | Path, cfg: "TrainConfig") -> Optional[Path]:
    """``<run_dir>/rubric.json``: the record plus the full dimensions (None without a rubric)."""
    record = rubric_record(cfg)
    if record is None:
        return None
    record["dimensions"] = _payload(cfg.rubric)
    target = Path(run_dir) / RUBRIC_FILE
    target.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return target
