"""Written constitutions for RLAIF: principles a judge applies to label preference pairs.

A constitution is a YAML file (``conf/constitution/NAME.yaml``, or any path)::

    name: default
    version: v1                      # optional; the content hash is appended either way
    description: A helpful, honest, harmless and brief assistant.
    principles:
      - name: helpful
        description: The answer addresses the question that was asked.
        weight: 2.0                  # optional, > 0 (default 1)

Its principles become the judge's rubric items (`rlvr.rewards.judge_prompt.JudgeItem`
fields), and its version (the declared one plus a hash of the principles) enters the judge's
cache key and every labelled row's ``origin``, so labels from two wordings never mix
unnoticed. A file with no principles, a principle without a name or description, a
repeated name or a weight that is not a positive number is one `ConfigError` line.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.config import CONF_DIR, ConfigError

__all__ = ["Constitution", "load_constitution", "available_constitutions", "parse_constitution"]


@dataclass(frozen=True)
class Constitution:
    name: str
    version: str  # declared version + "-" + 8 hex digits of the principles' hash
    description: str
    principles: tuple[dict[str, Any], ...]  # {name, description, weight}: the judge's items

    @property
    def origin(self) -> str:
        return f"constitution:{self.name}@{self.version}"


def available_constitutions() -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / "constitution").glob("*.yaml"))


def _path(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"constitution {spec}: no such file")
        return path
    shipped = Path(CONF_DIR) / "constitution" / f"{spec}.yaml"
    if not shipped.is_file():
        raise ConfigError(f"constitution {spec!r}: not a file and not one of the shipped constitutions "
                          f"({', '.join(available_constitutions()) or 'none'}); give a YAML path")
    return shipped


def parse_constitution(data: Any, where: str) -> Constitution:
    """A `Constitution` from a loaded YAML mapping; every problem is one `ConfigError` line."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a constitution is a mapping with name and principles")
    raw = data.get("principles")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: the constitution has no principles; list them under `principles:` "
                          f"(each with a name and a description)")
    principles, seen = [], set()
    for i, p in enumerate(raw):
        if not isinstance(p, dict) or not str(p.get("name") or "").strip() or not str(p.get("description") or
                                                                                        "").strip():
            raise ConfigError(f"{where}: principles[{i}] needs a name and a description")
        name = str(p["name"]).strip()
        if name in seen:
            raise ConfigError(f"{where}: principle {name!r} appears twice")
        seen.add(name)
        weight = p.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ConfigError(f"{where}: principle {name!r} has weight {weight!r}; a weight is a number > 0")
        unknown = sorted(set(p) - {"name", "description", "weight"})
        if unknown:
            raise ConfigError(f"{where}: principle {name!r} has unknown key(s) {', '.join(unknown)}")
        principles.append({"name": name, "description": str(p["description"]).strip(), "weight": float(weight)})
    digest = hashlib.sha256(json.dumps(principles, sort_keys=True).encode()).hexdigest()[:8]
    name = str(data.get("name") or where)
    return Constitution(name, f"{data.get('version', 'v0')}-{digest}", str(data.get("description") or ""),
                        tuple(principles))


def load_constitution(spec: str) -> Constitution:
    """A shipped constitution by name (``default``) or a YAML file by path."""
    import yaml

    path = _path(spec)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"constitution {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_constitution(data, f"constitution {path}")
