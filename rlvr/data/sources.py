"""Prompt sources (a registry) and the resumable prompt stream the loop draws from."""
from __future__ import annotations

import os
import random
from dataclasses import replace
from typing import Any, Callable, Optional, Protocol, Sequence

from rlvr.config import DataConfig
from rlvr.data.arithmetic import ArithmeticTask
from rlvr.data.coding import CodingTask
from rlvr.data.schema import Prompt, row_to_prompt
from rlvr.registry import Registry
from verifiers.formats import GENERIC, Format, FormatError, detect_format, get_format

__all__ = ["PromptSet", "SOURCES", "register_source", "build_prompt_sets", "PromptStream", "Phrased", "RowPrompts",
           "row_format", "evaluation_prompts"]


class PromptSet(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Prompt: ...


SOURCES: Registry[Callable[[DataConfig], tuple[PromptSet, PromptSet]]] = Registry("data.source")
register_source = SOURCES.register


def build_prompt_sets(cfg: DataConfig) -> tuple[PromptSet, PromptSet]:
    """(train, held-out) prompt sets of the source named by ``data.source``, phrased by
    ``data.prompt_template`` and ``data.system_prompt`` whatever the source."""
    train, held_out = SOURCES.lookup(cfg.source)(cfg)
    return _phrased(cfg, train), _phrased(cfg, held_out)


def evaluation_prompts(cfg: DataConfig) -> PromptSet:
    """What `rlvr-eval` scores: every row of ``data.path`` (split ``data.split``) for the file source, else
    the source's held-out set (``data.eval_size`` prompts), phrased as in training."""
    if cfg.source != "file":
        return build_prompt_sets(cfg)[1]
    if not cfg.path:
        raise ValueError("data.source=file needs data.path (a jsonl/json/parquet/csv file or an offline dataset)")
    rows = _load_rows(cfg.path, cfg.split)
    return _phrased(cfg, RowPrompts(rows, cfg, "eval", row_format(cfg, rows.column_names)))


def _phrased(cfg: DataConfig, prompts: PromptSet) -> PromptSet:
    if cfg.prompt_template is None and cfg.system_prompt is None:
        return prompts
    return Phrased(prompts, cfg.prompt_template, cfg.system_prompt)


class Phrased:
    """A prompt set whose last user message goes through a template and gains a system prompt."""

    def __init__(self, prompts: PromptSet, template: Optional[str], system_prompt: Optional[str]):
        if template is not None and "{prompt}" not in template:
            raise ValueError(f"data.prompt_template={template!r} has no {{prompt}} placeholder for the task's text")
        self.prompts, self.template, self.system_prompt = prompts, template, system_prompt

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index: int) -> Prompt:
        p = self.prompts[index]
        messages = [dict(m) for m in p.messages]
        if self.template is not None:
            last = max(i for i, m in enumerate(messages) if m["role"] == "user")
            messages[last]["content"] = self.template.replace("{prompt}", messages[last]["content"])
        if self.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return replace(p, messages=tuple(messages))


@register_source("arithmetic")
def _arithmetic(cfg: DataConfig) -> tuple[PromptSet, PromptSet]:
    a = cfg.arithmetic
    held_out = ArithmeticTask(a.difficulty, cfg.eval_size, a.seed, "eval", spaced=a.spaced)
    exclude = frozenset(held_out.expression(i) for i in range(len(held_out)))
    return ArithmeticTask(a.difficulty, a.num_train, a.seed, "train", exclude, a.spaced), held_out


@register_source("coding")
def _coding(cfg: DataConfig) -> tuple[PromptSet, PromptSet]:
    c = cfg.coding
    held_out = CodingTask(c.difficulty, cfg.eval_size, c.seed, "eval", c.num_cases)
    exclude = frozenset(held_out.prompt_text(i) for i in range(len(held_out)))
    return CodingTask(c.difficulty, c.num_train, c.seed, "train", c.num_cases, exclude), held_out


SOURCES.register_lazy("preference", "rlvr.data.preference_task:build_prompt_sets")
SOURCES.register_lazy("judge_pairs", "rlvr.data.judge_pairs:build_prompt_sets")
SOURCES.register_lazy("products", "rlvr.data.products:build_prompt_sets")


class RowPrompts:
    """A `datasets.Dataset` viewed as prompts: the generic columns (``data.prompt_field`` ...), or a
    dataset format (`verifiers.formats`) that builds each prompt, reference, verifier and SFT target
    from the dataset's own columns."""

    def __init__(self, rows: Any, cfg: DataConfig, name: str, fmt: Optional[Format] = None):
        self.rows, self.cfg, self.name, self.fmt = rows, cfg, name, fmt

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Prompt:
        c, row, uid = self.cfg, self.rows[int(index)], f"{self.name}-{index}"
        if self.fmt is None:
            return row_to_prompt(row, uid=uid, prompt_field=c.prompt_field, messages_field=c.messages_field,
                                 reference_field=c.reference_field, verifier_field=c.verifier_field,
                                 default_verifier=c.verifier)
        try:
            prompt, reference, target = self.fmt.prompt(row), self.fmt.reference(row), self.fmt.target(row)
        except FormatError as exc:
            raise ValueError(f"row {uid} (format {self.fmt.name}): {exc}") from None
        fields = {k: v for k, v in row.items() if k != c.verifier_field}
        return Prompt(messages=({"role": "user", "content": prompt},),
                      verifier=str(row.get(c.verifier_field) or self.fmt.verifier), reference=reference,
                      solution=target, fields=fields, uid=uid)


def row_format(cfg: DataConfig, fields: Sequence[str]) -> Optional[Format]:
    """The format that reads these rows (None: the generic columns), said out loud when auto chose it."""
    try:
        if cfg.format == "auto":
            fmt, why = detect_format(fields, cfg.reference_field)
        else:
            fmt, why = get_format(cfg.format), "data.format"
    except FormatError as exc:
        if cfg.format == "auto" and "no format fits" in str(exc):
            return None  # rows for SFT or a reward model alone: the generic columns, checked per row
        raise ValueError(f"data.format={cfg.format}: {exc}") from None
    if fmt.name == GENERIC:
        return None
    if not fmt.matches(fields):
        raise ValueError(f"data.format={fmt.name} needs the columns {fmt.required()}; {cfg.path} has "
                         f"{', '.join(fields)}")
    if cfg.format == "auto":
        print(f"data: format {fmt.name} ({why}; data.format=NAME to choose another)", flush=True)
    return fmt


class Rows:
    """Rows of a local data file, read by `verifiers.datafiles` (the reader `rlvr-verify` uses): a bad file
    is one message naming the file and the 1-based line, never a parser traceback."""

    def __init__(self, rows: list[dict[str, Any]], column_names: list[str]):
        self.rows, self.column_names = rows, column_names

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def select(self, indices: Sequence[int]) -> "Rows":
        return Rows([self.rows[i] for i in indices], self.column_names)


_LOCAL = (".jsonl", ".json", ".csv", ".parquet")


def _load_rows(path: str, split: str) -> Any:
    import datasets

    from verifiers.datafiles import DataFileError, open_dataset, open_rows

    local = os.path.expanduser(path)
    try:
        if os.path.splitext(local)[1].lower() in _LOCAL or os.path.isfile(local):
            source = open_rows(local)
            rows = list(source.rows)
            if not rows:
                raise ValueError(f"{path}: no rows; give a file with at least one row")
            return Rows(rows, list(source.fields))
        if os.path.isdir(local):
            try:
                return datasets.load_from_disk(local)[split]
            except FileNotFoundError:
                pass
        source = open_dataset(path, split)
        return Rows(list(source.rows), list(source.fields))
    except DataFileError as exc:
        raise ValueError(str(exc)) from None


@register_source("file")
def _file(cfg: DataConfig) -> tuple[PromptSet, PromptSet]:
    if not cfg.path:
        raise ValueError("data.source=file needs data.path (a jsonl/json/parquet/csv file or an offline dataset)")
    rows = _load_rows(cfg.path, cfg.split)
    if cfg.eval_path:
        held = _load_rows(cfg.eval_path, cfg.eval_split)
        held = held.select(range(min(cfg.eval_size, len(held))))
    else:
        if len(rows) <= cfg.eval_size:
            raise ValueError(f"{cfg.path} has {len(rows)} rows, not more than data.eval_size={cfg.eval_size}; "
                             f"lower data.eval_size or set data.eval_path")
        held = rows.select(range(len(rows) - cfg.eval_size, len(rows)))
        rows = rows.select(range(len(rows) - cfg.eval_size))
    fmt = row_format(cfg, rows.column_names)
    if cfg.eval_path and fmt is not None and not fmt.matches(held.column_names):
        raise ValueError(f"{cfg.eval_path}: the held-out file lacks the columns {fmt.required()} of format {fmt.name}")
    return RowPrompts(rows, cfg, "train", fmt), RowPrompts(held, cfg, "eval", fmt)


class PromptStream:
    """Shuffled epochs over a prompt set; its position is part of every checkpoint."""

    def __init__(self, prompts: PromptSet, seed: int):
        if len(prompts) == 0:
            raise ValueError("the training prompt set is empty")
        self.prompts, self.seed = prompts, seed
        self.epoch, self.position = 0, 0
        self._order: Sequence[int] = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(len(self.prompts)))
        random.Random(f"{self.seed}/epoch/{epoch}").shuffle(order)
        return order

    def take(self, n: int) -> list[Prompt]:
        out = []
        for _ in range(n):
            if self.position >= len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            out.append(self.prompts[self._order[self.position]])
            self.position += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
