"""The GPU check's model (scripts/gpu_check.sh): Qwen2.5-0.5B's configuration with random weights
and a Qwen-like tokenizer, both built here, offline, into a Hugging Face directory.

The tokenizer is a byte-level BPE trained on a little generated text, with Qwen's special tokens
(``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``) and a Qwen-style chat template; its vocabulary
is smaller than the model's 151,936 rows, as Qwen's own (151,665) is. Ids past it decode to nothing.
The generation config lists both of Qwen's ends (``<|im_end|>``, ``<|endoftext|>``).

    python scripts/gpu_check_model.py OUT_DIR            # the 0.5B shape (random weights, bf16 on disk)
    python scripts/gpu_check_model.py OUT_DIR --tiny     # the same tokenizer, a tiny Qwen2 (CPU dry run)
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
QWEN2_5_0_5B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                    intermediate_size=4864, vocab_size=151936, max_position_embeddings=32768)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, max_position_embeddings=2048)  # vocab: the tokenizer's


def corpus(lines: int = 4000, seed: int = 0) -> list[str]:
    """Arithmetic questions and answers in a few phrasings, and some words: what the check's prompts hold."""
    rng = random.Random(seed)
    words = ("the answer is what solve step first then so we get total each number add subtract multiply "
             "result final check boxed equals sum difference product of and to a is").split()
    out = []
    for _ in range(lines):
        a, b = rng.randint(0, 999), rng.randint(0, 99)
        op, value = rng.choice([("+", a + b), ("-", a - b), ("*", a * b)])
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
        out.append(f"What is {a}{op}{b}? {sentence.capitalize()}. \\boxed{{{value}}}")
    return out


def build_tokenizer(vocab_size: int = 4096):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(corpus(), trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=SPECIAL)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build(out_dir: Path, tiny: bool, seed: int = 0) -> str:
    """Write the model and tokenizer; returns a one-line description."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = build_tokenizer()
    shape = dict(TINY, vocab_size=-(-len(tok) // 64) * 64) if tiny else QWEN2_5_0_5B
    end, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(**shape, tie_word_embeddings=True, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                         use_sliding_window=False, bos_token_id=pad, eos_token_id=end, pad_token_id=pad)
    device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"  # a GPU initialises 0.5B in a second
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=pad, eos_token_id=[end, pad], pad_token_id=pad)
    model.to(torch.bfloat16).save_pretrained(out_dir)  # bf16 on disk, as the real checkpoint
    tok.save_pretrained(out_dir)
    return (f"Qwen2, hidden {config.hidden_size}, {config.num_hidden_layers} layers, vocab {config.vocab_size}, "
            f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters; tokenizer: byte-level BPE, "
            f"{len(tok)} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--tiny", action="store_true", help="a tiny Qwen2 for the CPU dry run")
    args = parser.parse_args()
    t0 = time.perf_counter()
    what = build(args.out_dir, args.tiny)
    print(f"model: {args.out_dir} ({what}), built in {time.perf_counter() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
