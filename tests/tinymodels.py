"""Tiny random models and tokenizers built at test time (a few hundred KB), so tests need no model hub.

The tokenizer is a byte-level BPE trained on a small mixed corpus (English, Korean, digits, emoji,
whitespace runs) with ChatML special tokens and chat template, like SmolLM2's; the BERT tokenizer is a
WordPiece trained the same way. Models are random but seeded, so numbers are repeatable.
"""

from __future__ import annotations

import random
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_WORDS = (
    "the a model learns to answer questions about data with care review product great bad terrible good "
    "ship order refund price quality battery screen fast slow happy sad friendly support team thanks please "
    "안녕하세요 감사합니다 배송 환불 제품 좋아요 나빠요 질문 답변 모델"
).split()


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        words = rng.choices(_WORDS, k=rng.randint(4, 14))
        lines.append(
            " ".join(words)
            + rng.choice([".", "!", "?", " 123.", " 2026-11-22", "  \t spaced", " 🙂", " café naïve"])
            + f" {i}"
        )
    lines += ["Hello world", "   leading spaces", "digits 0123456789 3.14159", "emoji 🤖🚀 ok", "tabs\tand\nnewlines"]
    return lines


def train_bpe_tokenizer(out_dir: str | Path, vocab_size: int = 512, chat_template: str | None = CHATML):
    """A byte-level BPE tokenizer (GPT-2 style pre-tokenizer) with ChatML specials, saved to `out_dir`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    if chat_template:
        fast.chat_template = chat_template
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast


def make_tiny_causal_lm(out_dir: str | Path, arch: str = "llama", seed: int = 0, **config_overrides) -> Path:
    """A random causal LM of `arch` (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, gpt2) + tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = Path(out_dir)
    tokenizer = train_bpe_tokenizer(out)
    sizes = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if arch == "gpt2":
        sizes = dict(
            vocab_size=len(tokenizer),
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=256,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    elif arch in ("gemma2", "gemma3_text", "qwen3"):
        sizes["head_dim"] = 16
    sizes.update(config_overrides)
    config = AutoConfig.for_model(arch, **sizes)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    return out


def wordpiece_vocab(lines: list[str]) -> list[str]:
    """A WordPiece vocabulary built in a fixed order: BERT's specials, every word, every character and its `##`
    continuation, each sorted.

    `tokenizers`' WordPiece trainer breaks count ties in hash order, so the vocabulary it returns differs from
    one process to the next (in its ids and even in which pieces it keeps); a model trained on top of it then
    learns differently in each test session. Whole words need no merges, so this small corpus is covered exactly.
    """
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=True)
    split = pre_tokenizers.BertPreTokenizer()
    words = {w for line in lines for w, _ in split.pre_tokenize_str(normalizer.normalize_str(line))}
    chars = {c for w in words for c in w}
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words | chars), *sorted("##" + c for c in chars)]


def make_tiny_bert(out_dir: str | Path, seed: int = 0, **config_overrides) -> Path:
    """A random BertModel (no task head, like all-MiniLM-L6-v2) with a WordPiece tokenizer made here."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the words the encoder tests build their rows from, so each stays one token
    extra = "positive negative neutral alice bob seoul paris acme widget london berlin what who where when is "
    extra += "hello from says lives likes lot in and people places mood"
    vocab = out / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in wordpiece_vocab(corpus() + [extra])), encoding="utf-8")
    # transformers 5 ignores `vocab_file=` here (only specials survive); `vocab=` keeps the vocabulary.
    tokenizer = BertTokenizer(vocab=str(vocab), do_lower_case=True)
    tokenizer.save_pretrained(out)
    sizes = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    sizes.update(config_overrides)
    torch.manual_seed(seed)
    BertModel(BertConfig(**sizes)).save_pretrained(out)
    return out
