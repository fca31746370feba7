"""Every end-of-sequence id stops generation and counts as a finish: the generation config's list, the
tokenizer's EOS and the chat template's end of turn (`rlvr.models.eos`), in the masks, the hf engine's
stop check and the supervised targets."""
from __future__ import annotations

import pytest
import torch

from rlvr.data.schema import Prompt
from rlvr.learner.targets import sft_batch
from rlvr.models.eos import closing_id, end_of_sequence_ids, end_of_turn_id
from rlvr.models.tiny import build_tokenizer
from rlvr.rollout import SamplingParams, build_engine
from rlvr.rollout.hf import completion_mask

from .chat_tokenizers import chat_tokenizer, gemma_tokenizer, llama3_tokenizer, qwen_tokenizer


def _id(tok, token: str) -> int:
    return tok.convert_tokens_to_ids(token)


def test_end_of_turn_is_the_special_token_that_closes_an_assistant_turn():
    qwen, llama = qwen_tokenizer(), llama3_tokenizer()
    assert end_of_turn_id(qwen) == _id(qwen, "<|im_end|>") != qwen.eos_token_id
    assert end_of_turn_id(llama) == _id(llama, "<|eot_id|>") != llama.eos_token_id
    assert end_of_turn_id(gemma_tokenizer()) == _id(gemma_tokenizer(), "<end_of_turn>")
    tiny = build_tokenizer()
    assert end_of_turn_id(tiny) == tiny.eos_token_id  # the embedded template closes turns with its EOS


@pytest.mark.parametrize("template", [
    None,  # no template
    "{% for m in messages %}{{ m['content'] }}\n\n{% endfor %}",  # raw text: nothing special closes a turn
    "{{ raise_exception('only user turns') }}",  # cannot render an assistant turn: no answer, no crash
])
def test_no_end_of_turn_without_a_template_that_writes_one(template):
    tok = chat_tokenizer(["<|endoftext|>"], "<|endoftext|>", template)
    assert end_of_turn_id(tok) is None
    assert end_of_sequence_ids(tok) == {tok.eos_token_id}
    assert closing_id(tok) == tok.eos_token_id


def test_every_end_of_sequence_id_is_collected():
    from transformers import GenerationConfig

    llama = llama3_tokenizer()
    eot, eom, end = (_id(llama, t) for t in ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"))
    assert end_of_sequence_ids(llama, GenerationConfig(eos_token_id=[end, eom])) == {end, eom, eot}
    assert end_of_sequence_ids(llama, GenerationConfig(eos_token_id=eom)) == {end, eom, eot}
    assert end_of_sequence_ids(llama) == {end, eot}  # no generation config (a bare module)
    qwen = qwen_tokenizer()
    assert end_of_sequence_ids(qwen) == {qwen.eos_token_id, _id(qwen, "<|im_end|>")}


def test_completion_mask_stops_at_the_first_id_of_the_set():
    ids = torch.tensor([[4, 7, 5, 5], [4, 4, 9, 7], [4, 4, 4, 4]])
    mask, truncated = completion_mask(ids, {7, 9})
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert truncated.tolist() == [False, False, True]


def _tiny_llama(tok, eos_ids):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=eos_ids, pad_token_id=tok.pad_token_id)
    return model


def _force(model, first: int, then: int) -> None:
    """The lm_head's output biased toward ``first`` at the prompt's forward, toward ``then`` afterwards."""
    calls = []

    def bias(module, inputs, logits):
        calls.append(1)
        logits = logits.clone()
        logits[..., first if len(calls) == 1 else then] += 1e4
        return logits

    model.lm_head.register_forward_hook(bias)


@pytest.mark.parametrize("family, stop", [("qwen", "<|im_end|>"), ("llama3", "<|eom_id|>")])
def test_hf_engine_finishes_at_a_secondary_eos(family, stop):
    tok = qwen_tokenizer() if family == "qwen" else llama3_tokenizer()
    model = _tiny_llama(tok, [tok.eos_token_id] + ([_id(tok, "<|eom_id|>")] if family == "llama3" else []))
    _force(model, _id(tok, "a"), _id(tok, stop))
    engine = build_engine("hf", model, tok)
    assert _id(tok, stop) in engine.eos_ids and _id(tok, stop) != tok.eos_token_id
    prompt = tok.apply_chat_template([{"role": "user", "content": "1+1"}], add_generation_prompt=True,
                                     tokenize=True, return_dict=False)
    out = engine.generate([prompt, prompt], SamplingParams(n=2, max_new_tokens=6))
    assert out.completion_ids.shape[1] == 2  # stopped right after the secondary EOS, not at the budget
    assert out.completion_ids[:, 1].tolist() == [_id(tok, stop)] * 4
    assert out.completion_mask.tolist() == [[1.0, 1.0]] * 4
    assert out.truncated.tolist() == [False] * 4
    assert out.texts == ["a"] * 4


def test_sft_targets_end_with_the_templates_end_of_turn():
    qwen = qwen_tokenizer()
    prompt = Prompt(messages=({"role": "user", "content": "1+1"},), verifier="math", reference="2", solution="2",
                    uid="p0")
    batch = sft_batch(qwen, [prompt])
    n = int(batch.completion_mask.sum())
    assert qwen.convert_ids_to_tokens(batch.completion_ids[0, :n].tolist()) == ["2", "<|im_end|>"]
    plain = chat_tokenizer(["<|endoftext|>"], "<|endoftext|>", None)
    batch = sft_batch(plain, [prompt])
    assert batch.completion_ids[0, :2].tolist() == [_id(plain, "2"), plain.eos_token_id]  # no template: EOS
