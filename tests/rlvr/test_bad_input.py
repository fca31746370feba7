"""Bad input at start-up: one `error:` line naming the fix, exit status 2, no traceback, and no trace
of the failed start (no new run directory; an existing run's files untouched)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


def _command(tool: str) -> list[str]:
    if tool == "rlvr-train":
        return [sys.executable, "-m", "rlvr.train"]
    return [str(Path(sys.executable).parent / tool)]


def _fails_in_one_line(tool: str, run_dir: Path, *overrides: str, env: dict) -> str:
    proc = subprocess.run([*_command(tool), f"hydra.run.dir={run_dir}", *overrides], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stdout[-1500:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Set the environment variable HYDRA_FULL_ERROR" not in proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    (root / "empty.jsonl").write_text("")
    (root / "malformed.jsonl").write_text('{"prompt": "1+1", "reference": "2"}\n{"prompt": "2+2", "reference": \n')
    (root / "binary.jsonl").write_bytes(bytes(range(256)) * 8)
    (root / "array.jsonl").write_text('{"prompt": "1+1", "reference": "2"}\n[1, 2]\n')
    return root


@pytest.mark.parametrize("name,needle", [("empty.jsonl", "no rows"), ("malformed.jsonl", "malformed.jsonl:2: not valid JSON"),
                                         ("binary.jsonl", "not UTF-8 text"), ("array.jsonl", "array.jsonl:2: expected a JSON object"),
                                         ("missing.jsonl", "no such file")])
def test_a_bad_data_file_is_one_line_and_leaves_no_run_directory(files, tmp_path, train_env, name, needle):
    run_dir = tmp_path / "run"
    error = _fails_in_one_line("rlvr-train", run_dir, "data=jsonl", f"data.path={files / name}", "model.sft.steps=0",
                               env=train_env)
    assert needle in error and not run_dir.exists()


@pytest.mark.parametrize("override,needle", [
    ("+trainer.learning_rate=1e-4", "unknown config key trainer.learning_rate"),
    ("++trainer.optim.lrr=1e-4", "unknown config key trainer.optim.lrr: did you mean trainer.optim.lr?"),
    ("+nonsense=1", "unknown config key nonsense"),
])
def test_an_appended_key_the_schema_lacks_is_refused_not_ignored(tmp_path, train_env, override, needle):
    run_dir = tmp_path / "run"
    assert needle in _fails_in_one_line("rlvr-train", run_dir, override, env=train_env)
    assert not run_dir.exists()


@pytest.mark.parametrize("tool,override", [("rlvr-sft", "+model.sft.step=3"), ("rlvr-rm", "+trainer.lr=1"),
                                           ("rlvr-dpo", "+loss.betta=0.1")])
def test_every_stage_refuses_unknown_keys(tmp_path, train_env, tool, override):
    assert "unknown config key" in _fails_in_one_line(tool, tmp_path / "run", override, env=train_env)


def test_a_failed_start_never_touches_an_existing_run(tmp_path, train_env, files):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("the earlier run's config\n")
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')
    _fails_in_one_line("rlvr-train", run_dir, "data=jsonl", f"data.path={files / 'empty.jsonl'}", env=train_env)
    assert (run_dir / "config.yaml").read_text() == "the earlier run's config\n"
    assert (run_dir / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_a_run_directory_that_cannot_be_created_is_one_line_before_hydra_tries(tmp_path, monkeypatch, capsys):
    import os

    from rlvr.entry import check_writable_run_dir

    target = tmp_path / "ro" / "run"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(tmp_path) else
                        real_access(path, mode))  # stands for a read-only file system (root ignores modes)
    with pytest.raises(SystemExit) as exit_info:
        check_writable_run_dir([f"hydra.run.dir={target}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: cannot create the run directory under")
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setattr(os, "access", real_access)
    check_writable_run_dir([f"hydra.run.dir={target}"])  # writable: nothing happens


@pytest.mark.parametrize("overrides,needle", [
    (("model.dtype=fp16",), "model.dtype=fp16: training in fp16 needs loss scaling"),
    (("model.weights_dtype=bf16",), "model.weights_dtype=bf16 computes in bf16: set model.dtype=bf16"),
    (("model.frozen_dtype=fp16", "model.device=cpu"), "model.frozen_dtype=fp16 on the CPU"),
    (("model.lora.rank=-1",), "model.lora: rank -1 must be >= 0"),
    (("model.attn_implementation=flash_attention_2", "model.device=cpu"), "needs the flash-attn package and a GPU"),
    (("model.sft.steps=0", "model.lora.rank=4", "model.lora.target_modules=[qkv]"),
     "model.lora.target_modules: the model has no linear layers named qkv; its linear layers: "),
])
def test_a_precision_or_lora_setting_that_cannot_work_is_one_line(tmp_path, train_env, overrides, needle):
    run_dir = tmp_path / "run"
    assert needle in _fails_in_one_line("rlvr-train", run_dir, *overrides, env=train_env)
    assert not run_dir.exists()


def test_a_preference_file_with_no_usable_pairs_for_a_judge_is_one_line(tmp_path, train_env):
    ties = tmp_path / "ties.jsonl"  # every row a tie: no pair to judge
    ties.write_text('{"prompt": "p", "chosen": "x", "rejected": "y", "score_chosen": 1, "score_rejected": 1}\n')
    run_dir = tmp_path / "run"
    error = _fails_in_one_line("rlvr-train", run_dir, "+experiment=tiny_genrm", f"data.path={ties}",
                               "model.sft.steps=0", env=train_env)
    assert "no preference pairs" in error and "all_tie" in error and not run_dir.exists()
