"""Each command's --help is its own (usage, what it does, invocations, its own groups and keys), the
presets are listable, and Hydra's full help stays reachable."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _out(*cmd: str) -> str:
    proc = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("command,own,foreign", [
    ("rlvr-train", ["algorithm", "rollout", "reward", "tiny_code"], ["coevo_rm"]),
    ("rlvr-sft", ["model.sft.steps", "data"], ["coevo_rm"]),
    ("rlvr-rm", ["tiny_rm", "trainer.freeze_backbone", "model"], ["algorithm ", "rollout ", "tiny_code"]),
    ("rlvr-dpo", ["loss.beta", "policy.path", "logger"], ["algorithm ", "rollout ", "tiny_rm"]),
    ("rlvr-eval", ["trainer.eval.k", "data.format", "rollout"], ["coevo_rm"]),
])
def test_each_command_help_is_its_own(command, own, foreign):
    text = _out(command, "--help")
    assert text.startswith(f"usage: {command} ") and "examples:" in text and "is powered by Hydra" not in text
    assert len([line for line in text.split("examples:")[1].split("\n\n")[0].splitlines() if line.strip()]) >= 5
    assert all(word in text for word in own), text
    assert not any(word in text for word in foreign), text
    assert f"{command} --hydra-help" in text


def test_presets_are_listed_for_the_command_that_runs_them():
    train = _out("rlvr-train", "--list-experiments")
    assert "smollm2_arith" in train and "tiny_code" in train and "tiny_rm " not in train
    rm = _out("rlvr-rm", "--list-experiments")
    assert "tiny_rm" in rm and "smollm2_arith" not in rm and "+experiment=NAME" in rm


def test_hydra_full_help_stays_reachable():
    assert "Hydra" in _out("rlvr-train", "--hydra-help")


def test_rlvr_verify_lists_every_verifier_with_its_options_and_the_formats():
    text = _out("rlvr-verify", "--list")
    for needle in ("math ", "code ", "exact ", "choice ", "format ", "timeout_s=10.0", "humaneval", "gsm8k"):
        assert needle in text, needle
