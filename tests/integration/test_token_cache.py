"""The workspace cache of tokenized SFT examples: what changes the key, what a hit returns, one build across
concurrent ranks."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from ftbench.core.recipe import validate_recipe
from ftbench.train.data import DataReport
from ftbench.train.token_cache import FOLDER, cached_tokenize, fingerprint


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def section(path, **kw):
    return validate_recipe({"task": "sft", "model": "m", "data": {"train": str(path), **kw}}).data


EXAMPLES = ([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4], "labels": [4]}], [])


def test_the_key_follows_file_tokenizer_and_options(tokenizer, data_file):
    from copy import deepcopy

    base = fingerprint(section(data_file), "alpaca", tokenizer)
    assert fingerprint(section(data_file), "alpaca", tokenizer) == base
    assert fingerprint(section(data_file, max_length=64), "alpaca", tokenizer) != base
    assert fingerprint(section(data_file, train_on_prompt=True), "alpaca", tokenizer) != base
    assert fingerprint(section(data_file, columns={"output": "answer"}), "alpaca", tokenizer) != base
    assert fingerprint(section(data_file), "messages", tokenizer) != base
    other = deepcopy(tokenizer)
    other.chat_template = "{{ messages[0]['content'] }}"
    assert fingerprint(section(data_file), "alpaca", other) != base
    with data_file.open("a") as f:
        f.write(json.dumps({"instruction": "q", "input": "", "output": "a"}) + "\n")
    assert fingerprint(section(data_file), "alpaca", tokenizer) != base


def test_a_second_call_reads_the_entry_with_its_report_counts(tmp_path):
    calls = []

    def build():
        calls.append(1)
        report.truncated += 2
        report.dropped_empty += 1
        return EXAMPLES

    report = DataReport("alpaca")
    first = cached_tokenize(tmp_path, "k1", report, build)
    again = DataReport("alpaca")
    second = cached_tokenize(tmp_path, "k1", again, build)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert (second.train, second.eval) == EXAMPLES
    assert (again.truncated, again.dropped_empty) == (2, 1)
    assert len(calls) == 1


def test_a_damaged_entry_is_rebuilt(tmp_path):
    cached_tokenize(tmp_path, "k2", DataReport("x"), lambda: EXAMPLES)
    (tmp_path / FOLDER / "k2.npz").write_bytes(b"not a zip")
    rebuilt = cached_tokenize(tmp_path, "k2", DataReport("x"), lambda: EXAMPLES)
    assert not rebuilt.from_cache and rebuilt.train == EXAMPLES[0]


def _rank(root, marker, results):
    def build():
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough that the other rank arrives while this one builds
        return EXAMPLES

    got = cached_tokenize(root, "shared", DataReport("x"), build)
    results.put((got.from_cache, got.train))


def test_concurrent_ranks_build_once_and_read_the_same_examples(tmp_path):
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    marker = tmp_path / "builds.txt"
    procs = [ctx.Process(target=_rank, args=(tmp_path, marker, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    outcomes = [results.get(timeout=5) for _ in procs]
    assert len(marker.read_text().splitlines()) == 1
    assert sorted(hit for hit, _ in outcomes) == [False, True, True]
    assert all(train == EXAMPLES[0] for _, train in outcomes)


def test_a_dataset_folder_is_keyed_by_the_files_inside(tokenizer, tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "data-00000-of-00001.arrow").write_bytes(b"rows")
    base = fingerprint(section(folder), "alpaca", tokenizer)
    (folder / "data-00000-of-00001.arrow").write_bytes(b"other rows")
    assert fingerprint(section(folder), "alpaca", tokenizer) != base


@pytest.mark.slow  # two real training jobs: ~70 s on a busy 2-core box
def test_a_second_run_on_the_same_data_reads_the_cache(workspace, tiny_llama, tmp_path):
    """End to end through `ftbench train`: the first run writes the entry, the second reads it and trains on
    the same examples (same first-step loss)."""
    from test_train_lifecycle import cli
    from test_train_tasks import toy_alpaca, write_jsonl

    from ftbench.core.events import read_events
    from ftbench.core.jobs import find_job

    data = write_jsonl(tmp_path / "toy.jsonl", toy_alpaca(12))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"task: sft\nmodel: {tiny_llama}\ndata: {data}\ntraining: {{max_steps: 1, logging_steps: 1}}\n")
    jobs = [find_job(workspace, cli(workspace, "train", str(recipe), "--wait").stdout.splitlines()[0]) for _ in "ab"]
    logs = [(job.dir / "log.txt").read_text() for job in jobs]
    assert "read from the workspace cache" not in logs[0] and "read from the workspace cache" in logs[1]
    assert len(list((workspace.root / FOLDER).glob("*.npz"))) == 1
    losses = [[e.get("loss") for e in read_events(job.dir / "events.jsonl") if e.kind == "train"] for job in jobs]
    assert losses[0] == losses[1] and losses[0][0] is not None
