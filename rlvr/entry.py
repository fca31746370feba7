"""What every console entry does around Hydra (`rlvr-train`, `rlvr-sft`, `rlvr-rm`, `rlvr-dpo`, `rlvr-eval`).

- `CommandHelp`: the command's own ``--help`` (usage, what it does, invocations, its own config groups
  and most-used keys), printed before Hydra parses anything; Hydra's full help stays at ``--hydra-help``.
- `experiments`: the presets under ``conf/experiment/`` of one root config (``--list-experiments``).
- `check_writable_run_dir`: a run directory that cannot be created is one error line, exit 2.
- `stage_entry`: the whole console entry of a stage over `rlvr.stage.run_stage` (single-process, or
  under torchrun too where the stage says so).
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from rlvr.stage import run_stage

__all__ = ["CommandHelp", "experiments", "answer_listing_flags", "check_writable_run_dir", "stage_entry"]


@dataclass(frozen=True)
class CommandHelp:
    """What ``COMMAND --help`` prints: usage, what the command does, common invocations, its own config
    groups (from the config root's defaults) and its most-used keys. Hydra's own help stays reachable
    (``--hydra-help``), and ``--cfg job`` prints every key with its value."""

    command: str
    root: str  # its root config under conf/ (config.yaml, rm.yaml, dpo.yaml)
    what: str
    examples: tuple[str, ...]
    keys: tuple[tuple[str, str], ...]

    def groups(self) -> list[tuple[str, list[str]]]:
        """The config groups the root's defaults list selects, each with the options conf/ has for it."""
        from rlvr.config import CONF_DIR

        conf = Path(CONF_DIR)
        named = re.findall(r"^\s*-\s*(?:optional\s+)?(?:override\s+)?/?([a-z_]+)\s*:", (conf / self.root).read_text(),
                           re.MULTILINE)
        return [(g, sorted(p.stem for p in (conf / g).glob("*.yaml"))) for g in named
                if g != "preset" and (conf / g).is_dir()]

    def render(self) -> str:
        width = max(len(k) for k, _ in self.keys)
        lines = [f"usage: {self.command} [KEY=VALUE ...] [GROUP=OPTION ...] [+experiment=NAME]", "", self.what, "",
                 "examples:", *(f"  {e}" for e in self.examples), "", "config groups (GROUP=OPTION):"]
        lines += [f"  {g:<12} {', '.join(options)}" for g, options in self.groups()]
        presets = [name for name, _ in experiments(self.root)]
        lines += [f"  {'+experiment':<12} {', '.join(presets) or '(none)'}  (descriptions: {self.command} "
                  f"--list-experiments)", "",
                  "most-used keys:"]
        lines += [f"  {k:<{width}}  {text}" for k, text in self.keys]
        lines += ["", f"every key and its value: {self.command} --cfg job;  Hydra's own help: {self.command} --hydra-help"]
        return "\n".join(lines)


def experiments(root: str) -> list[tuple[str, str]]:
    """(name, first line of its description) of each preset under conf/experiment/ for this root config
    (a preset names another root with a ``# root: rm.yaml`` line; otherwise it is rlvr-train's)."""
    from rlvr.config import CONF_DIR

    found = []
    for path in sorted((Path(CONF_DIR) / "experiment").glob("*.yaml")):
        comments = [line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")]
        roots = [c.split(":", 1)[1].split()[0] for c in comments if c.startswith("root:")]
        if (roots[0] if roots else "config.yaml") != root:
            continue
        found.append((path.stem, _first_sentence(comments)))
    return found


def _first_sentence(comments: list[str], limit: int = 110) -> str:
    """The first sentence of a preset's header comment (its description)."""
    words = []
    for line in comments:
        if line.startswith(("@package", "root:")):
            continue
        if not line or line.startswith(("rlvr-", " ")):
            if words:
                break
            continue
        words.append(line)
    text = " ".join(words)
    end = text.find(". ")
    text = text[:end + 1] if end >= 0 else text
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _run_dir_parent(args: list[str]) -> Path:
    """Where Hydra will create the run directory: the parent of ``hydra.run.dir`` when given, else ``runs/``."""
    for arg in args:
        if arg.lstrip("+").startswith("hydra.run.dir="):
            return Path(os.path.expanduser(arg.split("=", 1)[1])).absolute().parent
    return Path("runs").absolute()


def check_writable_run_dir(args: list[str]) -> None:
    """A run directory that cannot be created (a read-only file system, no permission) is one error line and
    exit status 2 before Hydra tries (Hydra's own failure is a traceback and exit status 1)."""
    parent = _run_dir_parent(args)
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("/"))
    if not os.access(existing, os.W_OK | os.X_OK):
        print(f"error: cannot create the run directory under {existing} (read-only or not writable); run from a "
              f"writable directory or set hydra.run.dir=DIR", file=sys.stderr, flush=True)
        sys.exit(2)


def answer_listing_flags(help: CommandHelp, argv: Optional[list[str]] = None) -> None:
    """``--help`` / ``-h`` print the command's own help; ``--list-experiments`` its presets; then exit 0.
    A run directory that cannot be created is one error line, exit 2. Anything else is left for Hydra."""
    args = sys.argv[1:] if argv is None else argv
    if "--help" in args or "-h" in args:
        print(help.render())
        sys.exit(0)
    if "--list-experiments" in args:
        found = experiments(help.root)
        width = max((len(name) for name, _ in found), default=0)
        print("\n".join(f"{name:<{width}}  {text}" for name, text in found) or "(no presets)")
        print(f"\nuse one: {help.command} +experiment=NAME")
        sys.exit(0)
    if not any(a.startswith("--") for a in args):  # --cfg, --hydra-help, ... write no run directory
        check_writable_run_dir(args)


def stage_entry(help: CommandHelp, validate: Callable[..., None], run: Callable[[Any, Path], Any],
                timeout_of: Optional[Callable[[Any], int]] = None) -> Callable[[], None]:
    """The console entry of a stage: its own --help and --list-experiments, else Hydra composes ``help.root``
    and `run_stage` runs it (``run`` may import its heavy modules itself, so help stays fast). With
    ``timeout_of`` the stage runs under torchrun too (`rlvr.stage.run_stage`): ranks > 0 then tell Hydra
    to write nothing of its own (rank 0's run directory is theirs)."""
    import hydra

    from rlvr.config import CONF_DIR
    from rlvr.distributed import QUIET_HYDRA_OVERRIDES, launched_world

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=Path(help.root).stem)
    def composed(dict_cfg: Any) -> None:
        run_stage(dict_cfg, validate, run, timeout_of, help.command)

    def main() -> None:
        answer_listing_flags(help)
        if timeout_of is not None and launched_world().rank > 0:
            sys.argv += list(QUIET_HYDRA_OVERRIDES)
        composed()

    return main
