"""`ftbench eval` on a tiny random llama with two tiny LoRA adapters (and its GGUF): the job, its files, resume.

The batched, adapter-switching generation of the eval job must give every prompt exactly the answer chat's
backend gives it alone; a resumed eval must keep cached answers and generate only what is missing; bad input
must be refused before any job starts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_chat_hf import make_adapter  # noqa: E402
from tinymodels import corpus  # noqa: E402

from ftbench.chat.hf import HFBackend  # noqa: E402
from ftbench.chat.protocol import GenSettings, VariantSpec  # noqa: E402
from ftbench.cli import main  # noqa: E402
from ftbench.core.events import read_events  # noqa: E402
from ftbench.core.jobs import find_job  # noqa: E402

N_PROMPTS = 10
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def adapters(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval-adapters")
    return {"A": make_adapter(tiny_llama, root / "A", 1), "B": make_adapter(tiny_llama, root / "B", 2)}


@pytest.fixture
def eval_file(tmp_path: Path) -> Path:
    lines = corpus(n=2 * N_PROMPTS, seed=3)
    rows = [{"prompt": lines[2 * i][:60], "reference": lines[2 * i + 1][:40]} for i in range(N_PROMPTS)]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def eval_args(ws, tiny_llama: Path, adapters: dict[str, Path], eval_file: Path, *extra: str) -> list[str]:
    return [
        "eval",
        str(tiny_llama),
        "--adapter",
        str(adapters["A"]),
        "--adapter",
        str(adapters["B"]),
        "--data",
        str(eval_file),
        "--max-tokens",
        str(MAX_TOKENS),
        "--batch-size",
        "4",
        "--workspace",
        str(ws.root),
        *extra,
    ]


def alone(tiny_llama: Path, adapters: dict[str, Path], prompts: list[str]) -> dict[str, list[str]]:
    """Each prompt generated on its own through chat's backend (the reference the batched eval must equal)."""
    backend = HFBackend(device="cpu")
    specs = [VariantSpec("base", "hf", str(tiny_llama))] + [
        VariantSpec(name, "adapter", str(path), base=str(tiny_llama)) for name, path in adapters.items()
    ]
    out: dict[str, list[str]] = {}
    settings = GenSettings(temperature=0.0, max_new_tokens=MAX_TOKENS)
    for spec in specs:
        backend.load(spec)
        out[spec.name] = [
            backend.generate(spec.name, [{"role": "user", "content": p}], settings, lambda _: None, lambda: False)[
                "text"
            ].strip()
            for p in prompts
        ]
    return out


@pytest.mark.slow  # two minutes on 2 busy cores: a detached job process imports torch
def test_eval_job_scores_every_variant_and_batched_answers_equal_single_ones(
    workspace, tiny_llama, adapters, eval_file, capsys
):
    code, out, err = run_cli(capsys, *eval_args(workspace, tiny_llama, adapters, eval_file, "--wait", "--json"))
    assert code == 0, err
    summary = json.loads(out)
    assert [v["name"] for v in summary["variants"]] == [tiny_llama.name, "A", "B"]
    job = find_job(workspace, summary["id"])
    assert job.state == "succeeded" and job.status["kind"] == "eval"
    on_disk = json.loads((job.dir / "metrics.json").read_text())
    assert on_disk == summary  # --json prints exactly metrics.json
    report = (job.dir / "report.md").read_text()
    predictions = [json.loads(line) for line in (job.dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == N_PROMPTS

    reference = alone(tiny_llama, adapters, [p["prompt"] for p in predictions])
    names = {tiny_llama.name: "base", "A": "A", "B": "B"}
    for variant, key in names.items():
        assert [p["answers"][variant]["prediction"] for p in predictions] == reference[key], variant
    # the adapters change the answers (otherwise the comparison above proves nothing about switching)
    assert reference["A"] != reference["base"] and reference["B"] != reference["A"]

    for v in summary["variants"]:
        m = v["metrics"]
        rows = [p["answers"][v["name"]] for p in predictions]
        # perplexity is exp(total NLL / total reference tokens), from per-example teacher-forced NLL
        total_nll, total_tokens = sum(r["nll"] for r in rows), sum(r["ref_tokens"] for r in rows)
        assert total_tokens > N_PROMPTS and m["perplexity"] == pytest.approx(math.exp(total_nll / total_tokens))
        assert m["rougeL"] == pytest.approx(100 * sum(r["scores"]["rougeL"] for r in rows) / N_PROMPTS)
        assert 0.0 <= m["chrf"] <= 100.0 and m["examples"] == N_PROMPTS
        assert f"{m['perplexity']:.2f}" in report  # the report shows the same numbers
    best_ppl = min(summary["variants"], key=lambda v: v["metrics"]["perplexity"])["name"]
    assert summary["best"]["perplexity"] == [best_ppl]
    progress = read_events(job.events_path, ["progress"])
    assert progress[-1]["done"] == progress[-1]["total"] == 3 * N_PROMPTS and "eta_s" in progress[-1]


@pytest.mark.slow
def test_resumed_eval_keeps_cached_answers_and_generates_only_the_rest(
    workspace, tiny_llama, adapters, eval_file, capsys
):
    code, out, err = run_cli(
        capsys, *eval_args(workspace, tiny_llama, adapters, eval_file, "--wait", "--json", "--no-base")
    )
    assert code == 0, err
    job = find_job(workspace, json.loads(out)["id"])
    first = [json.loads(line) for line in (job.dir / "predictions.jsonl").read_text().splitlines()]
    cache_a = sorted((job.dir / "cache").glob("00-*.jsonl"))[0]
    cache_b = sorted((job.dir / "cache").glob("01-*.jsonl"))[0]
    rows_a = cache_a.read_text().splitlines()
    kept = json.loads(rows_a[0])
    kept["prediction"] = "kept from the first attempt"
    # as if killed: A lost its last 3 answers (one torn line), B lost all of them
    cache_a.write_text("\n".join([json.dumps(kept), *rows_a[1:-3]]) + '\n{"id": "000', encoding="utf-8")
    cache_b.unlink()

    code, out, err = run_cli(capsys, "eval", "--resume", job.id, "--wait", "--json", "--workspace", str(workspace.root))
    assert code == 0, err
    second = [json.loads(line) for line in (job.dir / "predictions.jsonl").read_text().splitlines()]
    for before, after in zip(first, second, strict=True):
        if after["id"] == kept["id"]:
            assert after["answers"]["A"]["prediction"] == "kept from the first attempt"  # not regenerated
        else:  # the lost answers were generated again, the same
            assert after["answers"]["A"]["prediction"] == before["answers"]["A"]["prediction"]
    assert [p["answers"]["B"]["prediction"] for p in second] == [p["answers"]["B"]["prediction"] for p in first]
    resumed = [e for e in read_events(job.events_path, ["progress"]) if e["attempt"] == 2]
    assert resumed[0]["done"] > N_PROMPTS - 3  # started from the cache: A's 7 kept answers
    assert resumed[-1]["done"] == 2 * N_PROMPTS


def test_bad_input_is_refused_before_a_job_starts(workspace, tiny_llama, adapters, eval_file, tmp_path, capsys):
    no_refs = tmp_path / "prompts.jsonl"
    no_refs.write_text('{"prompt": "hello"}\n{"prompt": "again", "reference": "x"}\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", str(tiny_llama), "--data", str(no_refs), "--workspace", str(workspace.root))
    assert code == 2 and "1 of 2 prompts have no reference (first: row 1)" in err and "--no-reference" in err

    other = tmp_path / "other-model"
    other.mkdir()
    for f in tiny_llama.iterdir():
        if f.is_file():
            (other / f.name).write_bytes(f.read_bytes())
    tok = json.loads((other / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[300:302]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (other / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    code, _, err = run_cli(
        capsys,
        "eval",
        str(tiny_llama),
        "--also",
        str(other),
        "--data",
        str(eval_file),
        "--workspace",
        str(workspace.root),
    )
    assert code == 2 and "have different tokenizers (token id 300" in err

    code, _, err = run_cli(
        capsys,
        "eval",
        str(tiny_llama),
        "--data",
        str(eval_file),
        "--label-pattern",
        "(oops",
        "--workspace",
        str(workspace.root),
    )
    assert code == 2 and "not a valid regular expression" in err
    assert not list(workspace.root.glob("jobs/*"))  # no job folder was created by any of these


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_gguf_variant_scores_like_its_hf_model(workspace, tiny_llama, eval_file, tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    from ftbench.export.gguf.writer import convert

    gguf_path = Path(convert(tiny_llama, tmp_path / "tiny-f32.gguf", "f32")["path"])
    code, out, err = run_cli(
        capsys,
        "eval",
        str(tiny_llama),
        "--also",
        str(gguf_path),
        "--data",
        str(eval_file),
        "--max-tokens",
        str(MAX_TOKENS),
        "--workspace",
        str(workspace.root),
        "--wait",
        "--json",
    )
    assert code == 0, err
    hf, gguf = (v["metrics"] for v in json.loads(out)["variants"])
    # the same weights in f32: llama.cpp's logits give the same reference perplexity, and the same answers
    assert gguf["perplexity"] == pytest.approx(hf["perplexity"], rel=1e-3)
    job = find_job(workspace, json.loads(out)["id"])
    predictions = [json.loads(line) for line in (job.dir / "predictions.jsonl").read_text().splitlines()]

    # The random model emits stray byte tokens: transformers decodes an invalid UTF-8 byte as U+FFFD, llama.cpp
    # drops it, and llama.cpp finishes a character cut by the token budget. The same tokens read the same apart
    # from that, so one answer is a prefix of the other once replacement characters are removed.
    def text(p, name):
        return p["answers"][name]["prediction"].replace("\ufffd", "")

    same = sum(
        text(p, "tiny-f32").startswith(text(p, tiny_llama.name))
        or text(p, tiny_llama.name).startswith(text(p, "tiny-f32"))
        for p in predictions
    )
    assert same >= N_PROMPTS - 1, [(text(p, tiny_llama.name), text(p, "tiny-f32")) for p in predictions]
