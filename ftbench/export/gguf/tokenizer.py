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

    def write(self, w: Any, model_dir: Path, add_special: dict[str, bool] | None = None) -> None:
        """Write the vocabulary; `add_special` ({"bos": .., "eos": ..}) is what the HF tokenizer really does."""
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
        if add_special:  # observed behaviour beats tokenizer_config.json, whose unstated defaults vary by class
            special.add_special_token.update(add_special)
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
        llama3_words = r"[^\r\n\p{L}\p{N}]?\p{L}+"  # Llama-3 / Qwen2 family; a GPT-2 regex in a Split is not
        if llama3_words in rx and r"\p{N}{1,3}" in rx:
            return "llama-bpe"
        if llama3_words in rx and r"\p{N}" in rx:
            return "qwen2"
    raise FtbenchError(
        f"The tokenizer's pre_tokenizer ({json.dumps(pre)[:120]}...) matches none of the known llama.cpp "
        "pre-tokenizers.",
        "Known: gpt-2, smollm, llama-bpe, qwen2, tekken, gpt-4o. Pass --pre NAME if you know which one it is.",
    )


def structural_pre(tok_json: dict[str, Any]) -> str | None:
    """detect_pre, or None when the structure is not one of the known shapes."""
    try:
        return detect_pre(tok_json)
    except FtbenchError:
        return None


def _unicode_bytes_ok(tok: dict[str, Any]) -> bool:
    model = tok.get("model") or {}
    return model.get("type") == "BPE" and not model.get("byte_fallback")


# Tokenizing needs no torch; hiding it keeps this helper process at ~130 MB instead of ~370 MB, below the
# converter's own peak.
_HF_FACTS = (
    "import json, sys\n"
    "sys.modules['torch'] = None\n"
    "from transformers import AutoTokenizer\n"
    "sys.path.insert(0, sys.argv[2])\n"
    "from ftbench.export.gguf.tokenizer import hf_facts_of\n"
    "print(json.dumps(hf_facts_of(AutoTokenizer.from_pretrained(sys.argv[1]))))\n"
)

# Fallback probe for choosing a pre-tokenizer by behaviour: digits, whitespace runs, punctuation, CJK, Korean, emoji.
PRE_PROBE = (
    "Hello world!  Two  spaces,\tTabs\t\tand\n\nnewlines   \n 7 42 123 4567 89012 3.14159 2026-11-30 1,000,000 "
    "it's we'll THEY'RE don't (parens) [brackets] {braces} \"quotes\" ...!!! ??? --- === ___ a+b=c @user #tag "
    "日本語のテキスト 中文字符 안녕하세요 반갑습니다 🙂🤖🚀 👩‍💻 🦙🦙 café naïve Ünïcödé   trailing   "
)


def hf_facts_of(tok: Any) -> dict[str, Any]:
    """What the export needs from a loaded HF tokenizer (also run in a child process): its live pre-tokenizer,
    llama.cpp's fingerprint ids, the probe ids, and whether it adds BOS/EOS around a text."""
    from ftbench.export.gguf.pretok import LLAMA_CPP_PROBE

    backend = getattr(tok, "backend_tokenizer", None)
    plain = list(tok("a b", add_special_tokens=False)["input_ids"])
    full = list(tok("a b", add_special_tokens=True)["input_ids"])
    start = full.index(plain[0]) if plain and plain[0] in full else 0
    return {
        "pre_tokenizer": json.loads(backend.to_str()).get("pre_tokenizer") if backend is not None else None,
        "fingerprint_ids": list(tok.encode(LLAMA_CPP_PROBE)),  # as llama.cpp's converter calls it (specials added)
        "probe_ids": list(tok(PRE_PROBE, add_special_tokens=False)["input_ids"]),
        "add_special": {
            "bos": bool(start > 0 and tok.bos_token_id is not None and full[0] == tok.bos_token_id),
            "eos": bool(
                len(full) > start + len(plain) and tok.eos_token_id is not None and full[-1] == tok.eos_token_id
            ),
        },
    }


_FACTS_CACHE: dict[tuple[str, float], dict[str, Any]] = {}


def _tokenizer_stamp(model_dir: Path) -> tuple[str, float]:
    files = [model_dir / n for n in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")]
    return (str(model_dir.resolve()), max((f.stat().st_mtime for f in files if f.is_file()), default=0.0))


def hf_tokenizer_facts(model_dir: Path, in_process: bool = False) -> dict[str, Any] | None:
    """The tokenizer as transformers really runs it: its tokenizer class may rebuild the pre-tokenizer
    (transformers 5 does so per model type, e.g. Qwen2), so tokenizer.json alone can mislead.

    By default transformers is asked in a child process: importing it here would add hundreds of MB to
    the converter's peak memory, which otherwise stays near one tensor. Callers that have transformers
    loaded anyway (the export job) pass in_process=True. None when transformers cannot load it.
    """
    import subprocess
    import sys

    stamp = _tokenizer_stamp(model_dir)
    if stamp in _FACTS_CACHE:  # the job asks once per export, not once per GGUF type
        return _FACTS_CACHE[stamp]
    facts = None
    try:
        if in_process or "transformers" in sys.modules:  # already paid for: no child process needed
            from transformers import AutoTokenizer

            facts = hf_facts_of(AutoTokenizer.from_pretrained(model_dir))
        else:
            root = str(Path(__file__).resolve().parents[3])
            proc = subprocess.run(
                [sys.executable, "-c", _HF_FACTS, str(model_dir), root],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if proc.returncode == 0 and proc.stdout.strip():
                facts = json.loads(proc.stdout.strip().splitlines()[-1])
    except Exception:  # noqa: BLE001 - fall back to the file; verification still compares the ids
        facts = None
    if facts is not None:
        _FACTS_CACHE[stamp] = facts
    return facts


@dataclass(frozen=True)
class PreChoice:
    """The llama.cpp pre-tokenizer name written for a BPE vocabulary, and how it was chosen."""

    name: str
    how: str  # "forced", "llama.cpp fingerprint", "tokenizer structure", "probe"

    def describe(self) -> str:
        return f"{self.name} ({self.how})"


# Tried in this order when neither the fingerprint nor the structure names the pre-tokenizer.
PROBE_CANDIDATES = (
    "gpt-2",
    "llama-bpe",
    "qwen2",
    "smollm",
    "tekken",
    "gpt-4o",
    "deepseek-v3",
    "deepseek-llm",
    "starcoder",
    "falcon",
    "stablelm2",
    "olmo",
    "refact",
    "command-r",
    "dbrx",
    "mpt",
    "phi-2",
    "bloom",
)


def check_pre_name(name: str) -> str:
    from ftbench.export.gguf.pretok import RUNTIME_NAMES

    if name not in RUNTIME_NAMES:
        raise FtbenchError(
            f"--pre {name!r} is not a pre-tokenizer name llama.cpp knows.",
            "Known names: " + ", ".join(sorted(RUNTIME_NAMES)) + ".",
        )
    return name


def is_sentencepiece_dir(model_dir: Path) -> bool:
    """True for SentencePiece-family tokenizers: tokenizer.model, or a tokenizer.json that is Unigram or BPE with
    byte fallback (Gemma, Llama-2, Mistral, Phi-3 as saved by transformers or by `ftbench import`)."""
    if (model_dir / "tokenizer.model").is_file():
        return True
    tj = model_dir / "tokenizer.json"
    if not tj.is_file():
        return False
    model = json.loads(tj.read_text(encoding="utf-8")).get("model") or {}
    return model.get("type") == "Unigram" or (model.get("type") == "BPE" and bool(model.get("byte_fallback")))


def choose_pre(model_dir: Path, forced: str | None = None, in_process: bool = False) -> PreChoice | None:
    """The pre-tokenizer name for a byte-level BPE folder, chosen as llama.cpp's converter chooses it
    (None for SentencePiece folders, which need none).

    Order: a forced name; llama.cpp's fingerprint table; the tokenizer's structure; finally trying llama.cpp's
    common names on a probe text and keeping the first that splits it exactly as transformers does.
    """
    if forced:
        return PreChoice(check_pre_name(forced), "forced")
    if is_sentencepiece_dir(model_dir) or not (model_dir / "tokenizer.json").is_file():
        return None
    from ftbench.export.gguf.pretok import name_for_fingerprint

    facts = hf_tokenizer_facts(model_dir, in_process)
    if facts:
        known = name_for_fingerprint(facts["fingerprint_ids"])
        if known:
            return PreChoice(known, "llama.cpp fingerprint")
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if facts:
        tok["pre_tokenizer"] = facts["pre_tokenizer"]
    name = structural_pre(tok)
    if name:
        return PreChoice(name, "tokenizer structure")
    if facts:
        found = probe_pre(model_dir, facts["probe_ids"])
        if found:
            return PreChoice(
                found, "probe: same ids as transformers on digits, whitespace, punctuation, CJK, Korean, emoji"
            )
    raise FtbenchError(
        f"{model_dir}/tokenizer.json has a pre-tokenizer that matches no llama.cpp fingerprint, no known structure, "
        "and "
        f"none of {', '.join(PROBE_CANDIDATES)} splits a probe text like transformers does.",
        "Pass --pre NAME (or export.pre_tokenizer in the recipe) to force one; verification shows whether the ids "
        "match.",
    )


def probe_pre(model_dir: Path, want_ids: list[int]) -> str | None:
    """The first candidate name whose llama.cpp tokenization of PRE_PROBE equals transformers' ids.

    Each candidate is written as a vocabulary-only GGUF (no tensors) and loaded with vocab_only=True, which
    takes milliseconds; None when llama-cpp-python is missing or nothing matches.
    """
    import tempfile

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return None
    from ftbench.export.gguf.partial import partial_gguf
    from ftbench.export.verify import load_gguf

    n_rows = _bpe_size(json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8")))
    base = bpe_vocab(model_dir, n_rows, "gpt-2")
    with tempfile.TemporaryDirectory() as tmp:
        for name in PROBE_CANDIDATES:
            path = Path(tmp) / f"{name}.gguf"
            with partial_gguf(path, "llama") as w:
                for key, val in (
                    ("context_length", 256),
                    ("embedding_length", 64),
                    ("block_count", 1),
                    ("feed_forward_length", 64),
                    ("head_count", 1),
                ):
                    getattr(w, f"add_{key}")(val)
                w.add_layer_norm_rms_eps(1e-5)
                VocabExport(base.model, name, base.tokens, base.types, merges=base.merges).write(w, model_dir)
                w.write_header_to_file()
                w.write_kv_data_to_file()
                w.write_ti_data_to_file()
            llm = load_gguf(path, vocab_only=True)
            try:
                got = list(llm.tokenize(PRE_PROBE.encode("utf-8"), add_bos=False, special=False))
            finally:
                llm.close()
            if got == list(want_ids):
                return name
    return None


def _bpe_size(tok: dict[str, Any]) -> int:
    ids = list(tok["model"]["vocab"].values()) + [int(a["id"]) for a in tok.get("added_tokens") or []]
    return max(ids) + 1


def bpe_vocab(model_dir: Path, n_rows: int, pre: str | None = None) -> VocabExport:
    """Byte-level BPE vocabulary; `pre` is the llama.cpp pre-tokenizer name (chosen by `choose_pre` if None)."""
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if not pre:
        choice = choose_pre(model_dir)
        pre = choice.name if choice else None
    if not _unicode_bytes_ok(tok):
        raise FtbenchError(
            f"{model_dir}/tokenizer.json is not a byte-level BPE tokenizer and there is no tokenizer.model.",
            "Keep the SentencePiece tokenizer.model next to the model, or use a byte-level BPE tokenizer.",
        )
    id_to_tok: dict[int, tuple[str, int]] = {i: (t, NORMAL) for t, i in tok["model"]["vocab"].items()}
    for added in tok.get("added_tokens") or []:
        id_to_tok[int(added["id"])] = (added["content"], CONTROL if added.get("special") else USER_DEFINED)
    size = max(n_rows, max(id_to_tok) + 1)
    if max(id_to_tok) + 1 > n_rows:
        raise FtbenchError(
            f"The tokenizer in {model_dir} has {max(id_to_tok) + 1} tokens but the embedding has only {n_rows} rows.",
            "Resize the embeddings after adding tokens (model.resize_token_embeddings(len(tokenizer))).",
        )
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
        raise FtbenchError(
            "Exporting a SentencePiece tokenizer needs the sentencepiece package.", "pip install sentencepiece"
        ) from exc
    proc = spm.SentencePieceProcessor(model_file=str(model_dir / "tokenizer.model"))
    if add_space_prefix:  # the model's own flag (Gemma's and imported models' say no)
        from sentencepiece import sentencepiece_model_pb2 as pb

        spec = pb.ModelProto.FromString(proc.serialized_model_proto()).normalizer_spec
        add_space_prefix = spec.add_dummy_prefix
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
        raise FtbenchError(
            f"The tokenizer in {model_dir} has {len(tokens)} tokens but the embedding has only {n_rows} rows.",
            "Resize the embeddings after adding tokens (model.resize_token_embeddings(len(tokenizer))).",
        )
    while len(tokens) < n_rows:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(UNUSED)
        scores.append(-1000.0)
    return VocabExport("llama", "default", tokens, types, scores=scores, add_space_prefix=add_space_prefix)


def _json_add_space_prefix(tok: dict[str, Any]) -> bool:
    """Whether the SentencePiece-style tokenizer.json prepends "▁" to the text (Llama-2: yes, Gemma: no)."""

    def steps(node: Any) -> list[dict[str, Any]]:
        if not isinstance(node, dict):
            return []
        inner = node.get("normalizers") or node.get("pretokenizers")
        return [s for n in inner for s in steps(n)] if inner else [node]

    for step in steps(tok.get("normalizer")):
        if step.get("type") == "Prepend" and step.get("prepend") == "▁":
            return True
    for step in steps(tok.get("pre_tokenizer")):
        if step.get("type") == "Metaspace":
            scheme = step.get("prepend_scheme") or ("always" if step.get("add_prefix_space", True) else "never")
            return scheme != "never"
    return False


def json_spm_vocab(model_dir: Path, n_rows: int) -> VocabExport:
    """A SentencePiece-family vocabulary from tokenizer.json alone (no tokenizer.model), as llama.cpp's "llama"
    tokenizer needs it: pieces in id order with scores that make its highest-score-first merging pick the same
    merges as the HF tokenizer. Unigram keeps its own scores; for BPE with byte fallback the piece made by merge
    rank r scores -r, so earlier merges win exactly as in HF's BPE.
    """
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = tok["model"]
    pieces: dict[int, tuple[str, float]] = {}
    if model["type"] == "Unigram":
        for i, (piece, score) in enumerate(model["vocab"]):
            pieces[i] = (piece, float(score))
        unk = model.get("unk_id")
    else:
        rank: dict[str, int] = {}
        for r, merge in enumerate(model.get("merges") or []):
            left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
            rank.setdefault(left + right, r)
        for piece, i in model["vocab"].items():
            pieces[int(i)] = (piece, -float(rank[piece]) if piece in rank else 0.0)
        unk = model["vocab"].get(model.get("unk_token") or "<unk>")
    specials = {int(a["id"]): a for a in tok.get("added_tokens") or []}
    size = max([*pieces, *specials]) + 1
    if size > n_rows:
        raise FtbenchError(
            f"The tokenizer in {model_dir} has {size} tokens but the embedding has only {n_rows} rows.",
            "Resize the embeddings after adding tokens (model.resize_token_embeddings(len(tokenizer))).",
        )
    tokens, types, scores = [], [], []
    for i in range(n_rows):
        piece, score = pieces.get(i, (f"[PAD{i}]", -1000.0))
        kind = NORMAL if i in pieces else UNUSED
        if i in specials:
            piece, kind = specials[i]["content"], CONTROL if specials[i].get("special") else USER_DEFINED
            if i not in pieces:
                score = -1000.0
        if i == unk:
            kind = UNKNOWN
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            kind = BYTE
        tokens.append(piece)
        types.append(kind)
        scores.append(score)
    return VocabExport("llama", "default", tokens, types, scores=scores, add_space_prefix=_json_add_space_prefix(tok))


def build_vocab(model_dir: Path, n_rows: int, gguf_arch: str, pre: str | None = None) -> VocabExport:
    """Pick the tokenizer kind present in the folder and export it, padded to `n_rows` tokens."""
    if (model_dir / "tokenizer.model").is_file():
        return spm_vocab(model_dir, n_rows, add_space_prefix=not gguf_arch.startswith("gemma"))
    if is_sentencepiece_dir(model_dir):
        return json_spm_vocab(model_dir, n_rows)
    if (model_dir / "tokenizer.json").is_file():
        return bpe_vocab(model_dir, n_rows, pre)
    raise FtbenchError(
        f"{model_dir} has neither tokenizer.json nor tokenizer.model.",
        "Save the tokenizer next to the model (tokenizer.save_pretrained(dir)).",
    )
