"""A tiny BERT sequence classifier with its own WordPiece vocabulary, written locally (nothing downloaded):
the "reward model of another architecture" the third-party reward-model tests score with."""
from __future__ import annotations

import string
from pathlib import Path
from typing import Optional

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["what", "is", "the", "answer", "boxed"]


def write_vocab(out: Path) -> Path:
    """Special tokens, a few words, every printable character and its ``##`` continuation (no [UNK] in
    arithmetic prompts and answers)."""
    chars = sorted(set(string.printable) - set(string.whitespace))
    vocab = SPECIAL + WORDS + chars + [f"##{c}" for c in chars]
    path = out / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return path


def build_tiny_bert(out: Path, num_labels: int = 1, id2label: Optional[dict[int, str]] = None,
                    chat_template: Optional[str] = None, seed: int = 0) -> Path:
    """A ~20k-parameter BertForSequenceClassification and its BertTokenizerFast, saved to `out`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    tok = BertTokenizerFast(vocab_file=str(write_vocab(out)), model_max_length=128)
    if chat_template:
        tok.chat_template = chat_template
    labels = id2label or {i: f"LABEL_{i}" for i in range(num_labels)}
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels),
                        id2label=labels, label2id={v: k for k, v in labels.items()})
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
