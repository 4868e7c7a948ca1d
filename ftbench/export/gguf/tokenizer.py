"""Tokenizer export: byte-level BPE (tokenizer.json) and SentencePiece (tokenizer.model) -> tokenizer.ggml.*.

llama.cpp must split text exactly as the HF tokenizer does, so the token list keeps HF ids, special tokens
get the types llama.cpp treats as atomic, the list is padded to the embedding rows, and the BPE
pre-tokenizer name is derived from the tokenizer's structure (verification then confirms it by tokenizing
the same text with llama.cpp).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass
class VocabExport:
    """Everything written under tokenizer.ggml.* (plus the chat template)."""

    model: str  # "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    pre: str
    tokens: list[str]
    types: list[int]
    scores: list[float] | None = None
    merges: list[str] = field(default_factory=list)
    add_space_prefix: bool | None = None

    def write(self, w: Any, model_dir: Path) -> None:
        import gguf

        w.add_tokenizer_model(self.model)
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        if self.add_space_prefix is not None:
            w.add_add_space_prefix(self.add_space_prefix)
        special = gguf.SpecialVocab(model_dir, load_merges=self.model == "gpt2", n_vocab=len(self.tokens))
        if self.model == "gpt2" and not special.merges:
            special.merges = self.merges
        special.add_to_gguf(w, quiet=True)
        for kind in ("bos", "eos"):  # unstated means "not added" in HF; llama.cpp's default may differ
            if kind not in special.add_special_token:
                getattr(w, f"add_add_{kind}_token")(False)


def _regex_of(pre: dict[str, Any]) -> str:
    pat = pre.get("pattern") or {}
    return str(pat.get("Regex") or pat.get("String") or "")


def detect_pre(tok_json: dict[str, Any]) -> str:
    """The llama.cpp pre-tokenizer name implied by a tokenizer.json's pre_tokenizer structure."""
    pre = tok_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    splits = [s for s in steps if s.get("type") == "Split"]
    if splits and kinds[-1] == "ByteLevel":
        rx = _regex_of(splits[0])
        if r"\p{Lu}" in rx:
            return "gpt-4o" if "(?i:" in rx else "tekken"
        if r"\p{N}{1,3}" in rx:
            return "llama-bpe"
        if r"\p{N}" in rx:
            return "qwen2"
    raise FtbenchError(
        f"The tokenizer's pre_tokenizer ({json.dumps(pre)[:120]}...) matches none of the known llama.cpp pre-tokenizers.",
        "Known: gpt-2, smollm, llama-bpe, qwen2, tekken, gpt-4o; this model's tokenizer is not one ftbench can export yet.",
    )


def _unicode_bytes_ok(tok: dict[str, Any]) -> bool:
    model = tok.get("model") or {}
    return model.get("type") == "BPE" and not model.get("byte_fallback")


_LIVE_PRE = (
    "import json, sys\n"
    "from transformers import AutoTokenizer\n"
    "tok = AutoTokenizer.from_pretrained(sys.argv[1])\n"
    "print(json.dumps(json.loads(tok.backend_tokenizer.to_str()).get('pre_tokenizer')))\n"
)


def effective_tokenizer_json(model_dir: Path, in_process: bool = False) -> dict[str, Any]:
    """The tokenizer as transformers really runs it: its tokenizer class may rebuild the pre-tokenizer
    (transformers 5 does so per model type, e.g. Qwen2), so tokenizer.json alone can mislead.

    By default transformers is asked in a child process: importing it here would add hundreds of MB to
    the converter's peak memory, which otherwise stays near one tensor. Callers that have transformers
    loaded anyway (the export job) pass in_process=True.
    """
    import subprocess
    import sys

    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    try:
        if in_process or "transformers" in sys.modules:  # already paid for: no child process needed
            from transformers import AutoTokenizer

            live = AutoTokenizer.from_pretrained(model_dir).backend_tokenizer.to_str()
            tok["pre_tokenizer"] = json.loads(live).get("pre_tokenizer")
            return tok
        proc = subprocess.run([sys.executable, "-c", _LIVE_PRE, str(model_dir)], capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            tok["pre_tokenizer"] = json.loads(proc.stdout.strip().splitlines()[-1])
    except Exception:  # noqa: BLE001 - fall back to the file; verification still compares the ids
        pass
    return tok


def pre_tokenizer_name(model_dir: Path, in_process: bool = False) -> str | None:
    """The llama.cpp pre-tokenizer name for a BPE folder (None for SentencePiece folders)."""
    if (model_dir / "tokenizer.model").is_file() or not (model_dir / "tokenizer.json").is_file():
        return None
    return detect_pre(effective_tokenizer_json(model_dir, in_process))


def bpe_vocab(model_dir: Path, n_rows: int, pre: str | None = None) -> VocabExport:
    if pre:  # the caller already knows the pre-tokenizer; vocab and merges are the same in the file
        tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    else:
        tok = effective_tokenizer_json(model_dir)
    if not _unicode_bytes_ok(tok):
        raise FtbenchError(f"{model_dir}/tokenizer.json is not a byte-level BPE tokenizer and there is no tokenizer.model.",
                           "Keep the SentencePiece tokenizer.model next to the model, or use a byte-level BPE tokenizer.")
    id_to_tok: dict[int, tuple[str, int]] = {i: (t, NORMAL) for t, i in tok["model"]["vocab"].items()}
    for added in tok.get("added_tokens") or []:
        id_to_tok[int(added["id"])] = (added["content"], CONTROL if added.get("special") else USER_DEFINED)
    size = max(n_rows, max(id_to_tok) + 1)
    if max(id_to_tok) + 1 > n_rows:
        raise FtbenchError(f"The tokenizer in {model_dir} has {max(id_to_tok) + 1} tokens but the embedding has only {n_rows} rows.",
                           "Resize the embeddings after adding tokens (model.resize_token_embeddings(len(tokenizer))).")
    tokens, types = [], []
    for i in range(size):
        text, kind = id_to_tok.get(i, (f"[PAD{i}]", UNUSED))
        tokens.append(text)
        types.append(kind)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"].get("merges") or []]
    return VocabExport("gpt2", pre or detect_pre(tok), tokens, types, merges=merges)


def spm_vocab(model_dir: Path, n_rows: int, add_space_prefix: bool = True) -> VocabExport:
    try:
        import sentencepiece as spm
    except ImportError as exc:  # pragma: no cover - sentencepiece is a test/runtime dependency
        raise FtbenchError("Exporting a SentencePiece tokenizer needs the sentencepiece package.", "pip install sentencepiece") from exc
    proc = spm.SentencePieceProcessor(model_file=str(model_dir / "tokenizer.model"))
    tokens, types, scores = [], [], []
    for i in range(proc.vocab_size()):
        tokens.append(proc.id_to_piece(i))
        scores.append(float(proc.get_score(i)))
        if proc.is_unknown(i):
            types.append(UNKNOWN)
        elif proc.is_control(i):
            types.append(CONTROL)
        elif proc.is_unused(i):
            types.append(UNUSED)
        elif proc.is_byte(i):
            types.append(BYTE)
        else:
            types.append(NORMAL)
    extra: dict[int, tuple[str, int]] = {}
    tj = model_dir / "tokenizer.json"
    if tj.is_file():
        for added in json.loads(tj.read_text(encoding="utf-8")).get("added_tokens") or []:
            i, kind = int(added["id"]), CONTROL if added.get("special") else USER_DEFINED
            if i < len(tokens) and tokens[i] == added["content"]:
                if types[i] not in (UNKNOWN, BYTE):  # sentencepiece's API cannot tell user-defined pieces apart
                    types[i] = kind
            else:
                extra[i] = (added["content"], kind)
    for i, (text, kind) in sorted(extra.items()):
        while len(tokens) < i:
            tokens.append(f"[PAD{len(tokens)}]")
            types.append(UNUSED)
            scores.append(-1000.0)
        if i < len(tokens):
            tokens[i], types[i] = text, kind
        else:
            tokens.append(text)
            types.append(kind)
            scores.append(-1000.0)
    if len(tokens) > n_rows:
        raise FtbenchError(f"The tokenizer in {model_dir} has {len(tokens)} tokens but the embedding has only {n_rows} rows.",
                           "Resize the embeddings after adding tokens (model.resize_token_embeddings(len(tokenizer))).")
    while len(tokens) < n_rows:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(UNUSED)
        scores.append(-1000.0)
    return VocabExport("llama", "default", tokens, types, scores=scores, add_space_prefix=add_space_prefix)


def build_vocab(model_dir: Path, n_rows: int, gguf_arch: str, pre: str | None = None) -> VocabExport:
    """Pick the tokenizer kind present in the folder and export it, padded to `n_rows` tokens."""
    if (model_dir / "tokenizer.model").is_file():
        return spm_vocab(model_dir, n_rows, add_space_prefix=not gguf_arch.startswith("gemma"))
    if (model_dir / "tokenizer.json").is_file():
        return bpe_vocab(model_dir, n_rows, pre)
    raise FtbenchError(f"{model_dir} has neither tokenizer.json nor tokenizer.model.",
                       "Save the tokenizer next to the model (tokenizer.save_pretrained(dir)).")
