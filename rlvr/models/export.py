"""`rlvr-export RUN_OR_CHECKPOINT OUT_DIR`: a plain Hugging Face model directory from a run or checkpoint.

A run directory exports its newest complete checkpoint. A LoRA checkpoint (only the adapter) is
put back on its base model and merged, so OUT_DIR loads with ``from_pretrained`` (and in vLLM)
without PEFT; a full-weights checkpoint is written as it is. The weights keep their stored
precision. OUT_DIR must not exist yet (nothing is overwritten).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from rlvr.errors import ModelError, exit_on_user_error

__all__ = ["export", "main"]


def _source(path: Path) -> Path:
    from rlvr.checkpoint import latest_checkpoint

    if (path / "checkpoints").is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise ModelError(f"{path}: a run directory without a complete checkpoint; nothing to export")
        return found
    if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
        return path
    raise ModelError(f"{path}: neither a run directory (with checkpoints/) nor a model or adapter directory")


def export(path: Path, out: Path) -> Path:
    """Write ``path``'s weights (merged, where an adapter) and tokenizer to ``out``; returns the source used."""
    from rlvr.models.lora import is_adapter_dir
    from rlvr.models.weights import load_model, load_tokenizer

    if out.exists():
        raise ModelError(f"{out} already exists; choose a new output directory")
    source = _source(path)
    tokenizer = load_tokenizer(source)
    model = load_model(source, "auto")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    kind = "adapter merged into its base" if is_adapter_dir(source) else "full weights"
    print(f"rlvr-export: {source} ({kind}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters) "
          f"-> {out}")
    return source


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rlvr-export", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("source", type=Path, help="a run directory (its newest checkpoint), a checkpoint, or an "
                                                   "adapter directory")
    parser.add_argument("out", type=Path, help="the new Hugging Face model directory")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        export(args.source, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
