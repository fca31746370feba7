"""Character tokenizers built locally with the chat special tokens and templates of real model families.

Nothing is downloaded: a `tokenizers` WordLevel model over single characters (as the embedded
tiny tokenizer) plus the family's special tokens, wrapped as a `PreTrainedTokenizerFast`, with
a template written the way that family's template writes turns.
"""
from __future__ import annotations

import string

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_TEMPLATE = (  # Qwen2.5's ChatML layout
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                   "<|eom_id|>"]
LLAMA3_TEMPLATE = (  # Llama 3.x Instruct's layout
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

GEMMA_SPECIALS = ["<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"]
GEMMA_TEMPLATE = (  # Gemma 2's layout, which refuses a system role
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}")


def chat_tokenizer(specials: list[str], eos: str, template: str | None, bos: str | None = None):
    """A character tokenizer with ``specials`` (pad first), ``eos`` as its EOS and ``template`` as its chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.printable) - set("\t\r\x0b\x0c"))
    vocab = {token: i for i, token in enumerate(["<pad>"] + specials + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    extra = [s for s in specials if s not in (eos, bos)]
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token=eos, bos_token=bos,
                                  unk_token="<pad>", additional_special_tokens=extra)
    tok.chat_template = template
    tok.padding_side = "left"
    return tok


def qwen_tokenizer():
    """Qwen2.5-style: EOS ``<|endoftext|>``, turns closed by ``<|im_end|>``."""
    return chat_tokenizer(QWEN_SPECIALS, "<|endoftext|>", QWEN_TEMPLATE)


def llama3_tokenizer():
    """Llama-3-style: EOS ``<|end_of_text|>``, turns closed by ``<|eot_id|>`` (``<|eom_id|>`` in the generation
    config only)."""
    return chat_tokenizer(LLAMA3_SPECIALS, "<|end_of_text|>", LLAMA3_TEMPLATE, bos="<|begin_of_text|>")


def gemma_tokenizer():
    """Gemma-2-style: a template that raises on a system message."""
    return chat_tokenizer(GEMMA_SPECIALS, "<eos>", GEMMA_TEMPLATE, bos="<bos>")
