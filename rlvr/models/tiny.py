"""The embedded default model: a tiny Llama and a character-level tokenizer, built locally.

Nothing is downloaded. The tokenizer is a `tokenizers` WordLevel model over single
characters (printable ASCII plus newline) with chat special tokens, wrapped as a
`PreTrainedTokenizerFast` with a chat template:

    <|user|>12+34<|assistant|>\\boxed{46}<|end|>

``model.tiny_tokenizer=chars_tools`` (the tool-use preset, `conf/experiment/tiny_tools.yaml`) adds one
special token, ``<|tool|>``, after the characters, so the same template renders a tool's answer as
one id and `rlvr.tools.insert.Inserter` reads its frame from the template:

    <|user|>12*34<|assistant|>```python ...```\n<|end|><|tool|>408\n<|assistant|>\\boxed{408}<|end|>
"""
from __future__ import annotations

import string
from pathlib import Path

__all__ = ["build_tokenizer", "build_tiny_llama", "CHAT_TEMPLATE", "TOKENIZERS"]

SPECIAL = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
TOKENIZERS = {"chars": [], "chars_tools": ["<|tool|>"]}  # model.tiny_tokenizer -> special tokens after the characters
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}<|end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer(vocab_size: int = 0, kind: str = "chars"):
    """The character tokenizer; ``vocab_size`` > its 105 entries pads the vocabulary with unused
    filler tokens (benchmarks of real-model vocabulary sizes); ``kind`` (`TOKENIZERS`) adds roles."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.printable) - set("\t\r\x0b\x0c"))
    extra = TOKENIZERS[kind]
    vocab = {tok: i for i, tok in enumerate(SPECIAL + chars + extra)}
    for i in range(len(vocab), vocab_size):
        vocab[f"<f{i}>"] = i
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|pad|>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>", eos_token="<|end|>",
                                  unk_token="<|pad|>", additional_special_tokens=SPECIAL[2:] + extra)
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "left"
    return tok


def build_tiny_llama(out_dir: str | Path, *, hidden_size: int, num_layers: int, num_heads: int,
                     intermediate_size: int, seed: int = 0, max_positions: int = 256,
                     tokenizer: str = "chars") -> Path:
    """Write a freshly initialised tiny Llama and its tokenizer to `out_dir` (HF format)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer(kind=tokenizer)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
        max_position_embeddings=max_positions, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
