"""The demo SmolLM2-135M-Instruct with an SFT LoRA adapter exports to Q8_0 and Q4_K_M, loads in
llama-cpp-python, and answers the demo sentiment task as the HF model does."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("peft")

pytestmark = pytest.mark.slow  # ~1-2 min on 2 cores: a real 135M model is merged, converted, quantized, verified


def _demo_adapter(base, out):
    """A LoRA on every projection with small random B (the trained demo adapter stands in when present)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2e-3)
    model.save_pretrained(out)
    return out


def _greedy_hf(model, tok, prompt_ids, n):
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=n, do_sample=False)
    return out[0, len(prompt_ids) :].tolist()


def test_demo_smollm2_adapter_to_q8_0_and_q4_k_m(demo_workspace, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftbench.export.pipeline import resolve_source, run_export
    from ftbench.export.verify import load_gguf

    base = demo_workspace.models_dir / "smollm2-135m-instruct"
    adapter = _demo_adapter(base, tmp_path / "sft-sentiment")
    result = run_export(
        resolve_source(None, str(adapter)), tmp_path / "out", quants="q8_0,q4_k_m", keep_intermediates=True, log=print
    )
    assert result["verified"]
    checks = {c["type"]: c for c in result["verify"]}
    assert checks["q8_0"]["tokens_match"] and checks["q8_0"]["nmse"] < 1e-2
    assert checks["q4_k_m"]["tokens_match"] and checks["q4_k_m"]["kl"] < 0.5

    row = json.loads((demo_workspace.datasets_dir / "demo" / "sentiment-alpaca-eval.jsonl").read_text().splitlines()[0])
    merged = tmp_path / "out" / "merged"
    tok = AutoTokenizer.from_pretrained(merged)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": f"{row['instruction']}\n\n{row['input']}"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    ids = tok(prompt, add_special_tokens=True)["input_ids"]
    hf_model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    want = _greedy_hf(hf_model, tok, ids, 12)
    for qtype, n_same in (("Q8_0", 12), ("Q4_K_M", 1)):
        llm = load_gguf(tmp_path / "out" / f"sft-sentiment-{qtype}.gguf", n_ctx=512)
        assert llm.tokenize(prompt.encode(), add_bos=True, special=True) == ids
        got = []
        for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
            got.append(token)
            if len(got) == 12:
                break
        llm.close()
        print(qtype, repr(tok.decode(want)), repr(tok.decode(got)))
        assert got[:n_same] == want[:n_same], (qtype, tok.decode(want), tok.decode(got))
        label = next(w for w in ("positive", "negative", "neutral") if w in tok.decode(want))
        assert label in tok.decode(got)  # same answer to the demo task
