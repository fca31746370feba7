"""LoRA adapters: the merged weight stream, the reference with the adapter off, export, and a whole
`rlvr-train` run (bf16 weights over an fp32 master copy, gradient checkpointing) resumed after SIGKILL."""
from __future__ import annotations

import json
import math
import subprocess
from types import SimpleNamespace

import pytest
import torch

from rlvr.errors import ModelError
from rlvr.models import load_model
from rlvr.models.lora import adapter_disabled, apply_lora, is_adapter_dir, plain_shapes, plain_tensors
from rlvr.models.policy import load_policy
from rlvr.rl.loop import DETERMINISTIC_SKIP

from .conftest import REPO, kill_after, train_command

LORA = SimpleNamespace(rank=4, alpha=8.0, dropout=0.0, target_modules=["all-linear"])


def _model_cfg(**lora):
    return SimpleNamespace(weights_dtype="fp32", attn_implementation="sdpa", lora=SimpleNamespace(**{**vars(LORA), **lora}))


def _adapted(tiny_model_dir):
    torch.manual_seed(0)
    model = apply_lora(load_model(tiny_model_dir), LORA)
    with torch.no_grad():  # a trained-looking adapter: B is zero at initialisation
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return model


def _ids():
    return torch.tensor([[3, 5, 7, 9, 11, 13]])


def test_the_merged_stream_equals_peft_s_own_merge_under_the_base_names(tiny_model_dir):
    model = _adapted(tiny_model_dir)
    stream = dict(plain_tensors(model))
    base = load_model(tiny_model_dir)
    assert set(stream) == set(base.state_dict())  # the names an engine loading the base model expects
    assert plain_shapes(model) == {k: tuple(v.shape) for k, v in base.state_dict().items()}
    merged = _adapted(tiny_model_dir).merge_and_unload().state_dict()
    changed = 0
    for name, tensor in stream.items():
        torch.testing.assert_close(tensor, merged[name], rtol=1e-5, atol=1e-6)
        changed += not torch.equal(tensor, base.state_dict()[name])
    assert changed >= 7  # every adapted projection of the layer carries its update
    # the stream never wrote into the module: its base weights are still the base model's
    q = "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"
    assert torch.equal(model.state_dict()[q], base.state_dict()["model.layers.0.self_attn.q_proj.weight"])


def test_the_reference_is_the_base_model_with_the_adapter_switched_off(tiny_model_dir):
    model, base = _adapted(tiny_model_dir).eval(), load_model(tiny_model_dir).eval()
    with torch.no_grad():
        ref = adapter_disabled(model.forward, model)(input_ids=_ids()).logits
        torch.testing.assert_close(ref, base(input_ids=_ids()).logits)
        assert not torch.allclose(model(input_ids=_ids()).logits, ref)  # and the adapter is back on after


def test_a_target_the_model_lacks_names_its_linear_layers(tiny_model_dir):
    with pytest.raises(ModelError, match="no linear layers named qkv.*q_proj"):
        apply_lora(load_model(tiny_model_dir), SimpleNamespace(**{**vars(LORA), "target_modules": ["qkv"]}))


def test_export_merges_the_adapter_into_a_plain_model(tiny_model_dir, tmp_path):
    from rlvr.models import load_tokenizer
    from rlvr.models.export import export

    model = _adapted(tiny_model_dir)
    model.peft_config["default"].base_model_name_or_path = str(tiny_model_dir)
    model.save_pretrained(tmp_path / "adapter")
    load_tokenizer(tiny_model_dir).save_pretrained(tmp_path / "adapter")
    assert is_adapter_dir(tmp_path / "adapter")
    export(tmp_path / "adapter", tmp_path / "merged")
    assert not is_adapter_dir(tmp_path / "merged") and (tmp_path / "merged" / "tokenizer.json").exists()
    plain = load_model(tmp_path / "merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(input_ids=_ids()).logits, model.eval()(input_ids=_ids()).logits,
                                   rtol=1e-4, atol=1e-5)
    with pytest.raises(ModelError, match="already exists"):
        export(tmp_path / "adapter", tmp_path / "merged")


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir):
    grads = []
    for on in (False, True):
        torch.manual_seed(0)
        model = load_policy(_model_cfg(rank=4), tiny_model_dir, gradient_checkpointing=on).train()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.fill_(0.1)
        model(input_ids=_ids()).logits.logsumexp(-1).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        assert model.base_model.model.model.gradient_checkpointing is on
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-7)


def test_an_fp32_master_copy_keeps_updates_that_bf16_weights_round_away():
    from rlvr.config import OptimConfig
    from rlvr.learner.torch_backend import TorchBackend

    finals = {}
    for master in ("fp32", "bf16"):
        layer = torch.nn.Linear(4, 1, bias=False).to(torch.bfloat16)
        with torch.no_grad():
            layer.weight.fill_(1.0)
        backend = TorchBackend(layer, OptimConfig(lr=1e-4, max_grad_norm=0), 100, master_dtype=master)
        assert (backend.master is not None) is (master == "fp32")
        for _ in range(100):  # each step moves a weight by ~1e-4, under bf16's spacing of 2**-7 at 1.0
            layer(torch.ones(1, 4, dtype=torch.bfloat16)).sum().backward()
            backend.step()
        finals[master] = float(layer.weight[0, 0].detach())
    assert finals["bf16"] == 1.0  # every single step rounded back to 1.0
    assert finals["fp32"] < 0.995  # the master copy accumulated 100 x 1e-4 = 0.01 and bf16 shows it


def _comparable(row: dict) -> dict:
    return {k: v for k, v in row.items() if not any(k.startswith(s) for s in DETERMINISTIC_SKIP)}


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


LORA_RUN = ("trainer.threads=1", "model.lora.rank=4", "model.lora.alpha=8", "model.dtype=bf16",
            "model.weights_dtype=bf16", "trainer.gradient_checkpointing=true", "algorithm.beta=0.04",
            "model.sft.steps=300", "reward=verifier_format", "trainer.optim.lr=3e-3")


def test_a_lora_run_trains_only_the_adapter_and_resumes_exactly_after_sigkill(tmp_path, train_env):
    whole = tmp_path / "whole"
    proc = subprocess.run(train_command(whole, *LORA_RUN), env=train_env, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "policy: LoRA rank 4" in proc.stdout and "gradient checkpointing on" in proc.stdout
    assert "policy weights bf16, optimizer master and states fp32" in proc.stdout
    steps = [r for r in _metrics(whole) if "loss" in r]
    assert any(r["kl"] > 0 for r in steps[1:])  # the adapter moved the policy off the reference (the base)
    last = sorted((whole / "checkpoints").glob("step_*"))[-1]
    assert is_adapter_dir(last) and not (last / "model.safetensors").exists()  # the checkpoint holds the adapter

    killed = tmp_path / "killed"
    cmd = train_command(killed, *LORA_RUN)
    kill_after(cmd, train_env, killed / "checkpoints" / "step_000002" / "COMPLETE")
    resumed = subprocess.run(cmd + ["resume=auto"], env=train_env, cwd=REPO, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    want, got = [_comparable(r) for r in _metrics(whole)], [_comparable(r) for r in _metrics(killed)]
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for w, g in zip(want, got):
        for key in w:
            if isinstance(w[key], float):
                assert math.isclose(w[key], g[key], abs_tol=1e-6), (w["step"], key, w[key], g[key])
