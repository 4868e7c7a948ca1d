"""The bad-input corpus: files, recipes, `--set` values, references, transcripts and state files a user may
bring, each refused the same way.

Every case runs the real CLI in this process and must end with exit code 2, exactly one `error:` line that
names the file, key or row at fault, no traceback, and the workspace (and the user's own files beside it)
exactly as they were: same paths, sizes and modification times. Nothing here loads a model, so the whole
corpus takes seconds.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from ftbench.cli import main
from ftbench.core.workspace import Workspace

RUN_ID = "20261122-000000-sft-demo-ab12"
CHAT_ID = "20261122-000000-chat-ab12"
ROWS = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(4)]


@dataclass
class Case:
    """One bad input: `setup` writes it and returns the command's arguments; `names` must all be in the error."""

    setup: Callable[[Bench], list[str]]
    names: Callable[[Bench], list[str]]
    group: str = ""
    marks: list = field(default_factory=list)


class Bench:
    """A fresh workspace with a fake model folder, a good data file and a good recipe beside it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ws = Workspace.open(tmp / "ws")
        self.model = tmp / "model"
        self.model.mkdir()
        (self.model / "config.json").write_text(json.dumps({"model_type": "llama"}))
        self.data = self.write("train.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS))

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def recipe(self, name: str = "recipe.yaml", **sections: object) -> Path:
        raw: dict = {"task": "sft", "model": str(self.model), "data": str(self.data)}
        raw.update({key: str(value) if isinstance(value, Path) else value for key, value in sections.items()})
        return self.write(name, yaml.safe_dump(raw))

    def cli(self, *argv: str | Path) -> list[str]:
        return ["-w", str(self.ws.root), *map(str, argv)]

    def run_folder(self, job_id: str = RUN_ID, status: str | None = None, recipe: str | None = None) -> Path:
        folder = self.ws.runs_dir / job_id
        folder.mkdir(parents=True)
        state = {"id": job_id, "kind": "train", "state": "failed", "name": "demo", "created_at": 1.0}
        (folder / "status.json").write_text(status if status is not None else json.dumps(state))
        (folder / "job.json").write_text(json.dumps({"id": job_id, "kind": "train", "params": {}}))
        if recipe is not None:
            (folder / "recipe.yaml").write_text(recipe)
        return folder


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and modification time (ns)."""
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        out[str(path.relative_to(root))] = (info.st_size if path.is_file() else 0, info.st_mtime_ns)
    return out


# --------------------------------------------------------------------------------------------------------------
# inputs


def parquet_bytes() -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"instruction": ["q"] * 50, "output": ["a"] * 50}), sink)
    return sink.getvalue()


def squad_doc(start: int = 12, qas: bool = True) -> str:
    question = {"id": "q-7", "question": "Where?", "answers": [{"text": "France", "answer_start": start}]}
    paragraph: dict = {"context": "Paris is in France."}
    if qas:
        paragraph["qas"] = [question]
    return json.dumps({"version": "v1.1", "data": [{"title": "Paris", "paragraphs": [paragraph]}]})


def gguf_truncated() -> bytes:
    """A GGUF header that promises one metadata pair and ends inside its key."""
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 40) + b"general.arch"


def qa_bench(b: Bench, data: Path, **extra: object) -> list[str]:
    (b.model / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}))
    recipe = b.write("qa.yaml", yaml.safe_dump({"task": "qa", "model": str(b.model), "data": str(data), **extra}))
    return b.cli("validate", "--data", recipe)


def data_case(name: str, content: str | bytes | Callable[[], bytes] | None, *names: str) -> Case:
    """A data file that `validate --data` must refuse, naming the file (and whatever else `names` says)."""

    def setup(b: Bench) -> list[str]:
        body = content() if callable(content) else content
        path = b.write(name, body) if body is not None else b.tmp / name
        return b.cli("validate", "--data", b.recipe(data=path))

    return Case(setup, lambda b: [str(b.tmp / name), *names], "data files")


def train_case(name: str, content: str | bytes | Callable[[], bytes], *names: str) -> Case:
    """The same refusal from `train` as from `validate --data`, before any job folder exists."""

    def setup(b: Bench) -> list[str]:
        body = content() if callable(content) else content
        return b.cli("train", b.recipe(data=b.write(name, body)))

    return Case(setup, lambda b: [str(b.tmp / name), *names], "data files")


def torn_weights(*argv: str) -> Callable[[Bench], list[str]]:
    def setup(b: Bench) -> list[str]:
        (b.model / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{torn")
        return b.cli(*[str(b.model) if a == "MODEL" else a for a in argv])

    return setup


def recipe_case(sections: dict, *names: str, command: str = "validate") -> Case:
    def setup(b: Bench) -> list[str]:
        return b.cli(command, b.recipe(**sections))

    return Case(setup, lambda b: ["recipe.yaml", *names], "recipes")


def raw_recipe_case(text: str | bytes, *names: str) -> Case:
    def setup(b: Bench) -> list[str]:
        return b.cli("validate", b.write("raw.yaml", text))

    return Case(setup, lambda b: ["raw.yaml", *names], "recipes")


def set_case(override: str, *names: str, command: str = "validate") -> Case:
    def setup(b: Bench) -> list[str]:
        return b.cli(command, b.recipe(), "--set", override)

    return Case(setup, lambda b: list(names), "--set values")


def ref_case(*argv: str, names: tuple[str, ...], runs: tuple[str, ...] = ()) -> Case:
    def setup(b: Bench) -> list[str]:
        for job_id in runs:
            b.run_folder(job_id)
        return b.cli(*argv)

    return Case(setup, lambda b: list(names), "references")


def transcript_case(content: str | bytes, *names: str) -> Case:
    def setup(b: Bench) -> list[str]:
        return b.cli("chat", "--resume", b.write("shared.jsonl", content), "--prompt", "hi")

    return Case(setup, lambda b: ["shared.jsonl", *names], "transcripts")


def state_case(setup: Callable[[Bench], list[str]], *names: str) -> Case:
    return Case(setup, lambda b: list(names), "state files")


def model_case(setup: Callable[[Bench], list[str]], *names: str) -> Case:
    return Case(setup, lambda b: list(names), "model files")


HEADER = {"type": "chat", "id": CHAT_ID, "variants": [{"name": "base", "kind": "scripted"}], "settings": {}}


def chat_lines(*objs: object) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def corrupt_status(command: str) -> Callable[[Bench], list[str]]:
    def setup(b: Bench) -> list[str]:
        b.run_folder(status='{"id": "x", "state": ')
        return b.cli(command, RUN_ID)

    return setup


def with_toml(text: str | bytes) -> Callable[[Bench], list[str]]:
    def setup(b: Bench) -> list[str]:
        path = b.ws.root / "ftbench.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return b.cli("runs")

    return setup


def resume_with_recipe(text: str) -> Callable[[Bench], list[str]]:
    def setup(b: Bench) -> list[str]:
        b.run_folder(recipe=text)
        return b.cli("resume", RUN_ID)

    return setup


def safetensors_file(path: Path, tensors: dict[str, tuple[int, ...]]) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.zeros(shape, dtype=np.float32) for k, shape in tensors.items()}, str(path))


def adapter_on(b: Bench, hidden: int, config: str | None = None) -> Path:
    """A LoRA adapter for q_proj of a model with `hidden` features; the fake base has 16."""
    safetensors_file(b.model / "model.safetensors", {"model.layers.0.self_attn.q_proj.weight": (16, 16)})
    adapter = b.tmp / "adapter"
    safetensors_file(
        adapter / "adapter_model.safetensors",
        {
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": (4, hidden),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": (hidden, 4),
        },
    )
    cfg = {"peft_type": "LORA", "base_model_name_or_path": "org/other-base-7b", "r": 4, "lora_alpha": 8}
    (adapter / "adapter_config.json").write_text(config if config is not None else json.dumps(cfg))
    return adapter


def wrong_base_export(b: Bench) -> list[str]:
    return b.cli("export", adapter_on(b, 32), "--base", b.model)


def corrupt_adapter_config(b: Bench) -> list[str]:
    return b.cli("export", adapter_on(b, 16, config="{peft"), "--base", b.model)


def gguf_verify(b: Bench) -> list[str]:
    return b.cli("verify", b.write("cut.gguf", gguf_truncated()), "--against", b.model)


def gguf_chat(b: Bench) -> list[str]:
    return b.cli("chat", b.write("cut.gguf", gguf_truncated()), "--prompt", "hi")


def broken_model_config(b: Bench) -> list[str]:
    (b.model / "config.json").write_text('{"model_type": ')
    return b.cli("validate", "--data", b.recipe())


def prompts_file(content: str | bytes) -> Callable[[Bench], list[str]]:
    def setup(b: Bench) -> list[str]:
        return b.cli("chat", b.model, "--prompts", b.write("prompts.jsonl", content))

    return setup


def predict_file(content: str | bytes) -> Callable[[Bench], list[str]]:
    def setup(b: Bench) -> list[str]:
        return b.cli("predict", "last", "--file", b.write("inputs.jsonl", content))

    return setup


def trust_on_train(b: Bench) -> list[str]:
    return b.cli("train", b.recipe(model={"path": str(b.model), "trust_remote_code": True}))


def trust_on_resume(b: Bench) -> list[str]:
    recipe = {"task": "sft", "model": {"path": str(b.model), "trust_remote_code": True}, "data": str(b.data)}
    b.run_folder(recipe=yaml.safe_dump(recipe))
    return b.cli("resume", RUN_ID)


LATIN1_JSONL = '{"instruction": "caf\xe9", "output": "x"}\n'.encode("latin-1")
GOOD_ROW = json.dumps(ROWS[0]) + "\n"

CASES: dict[str, Case] = {
    # -- data files (validate --data; train reads them through the same reader) ------------------------------
    "parquet-garbage": data_case("d.parquet", b"PAR1 this is not parquet at all"),
    "parquet-truncated": data_case("d.parquet", lambda: parquet_bytes()[:200]),
    "arrow-garbage": data_case("d.arrow", b"ARROW1\x00\x00 torn"),
    "jsonl-bad-line": data_case("d.jsonl", GOOD_ROW + "{not json}\n", "row 2"),
    "jsonl-latin1": data_case("d.jsonl", LATIN1_JSONL, "line 1", "0xE9"),
    "csv-latin1": data_case("d.csv", "instruction,output\ncaf\xe9,x\n".encode("latin-1"), "line 2"),
    "csv-short-row": data_case("d.csv", "instruction,output\nq,a\nonly-one\n", "row 2"),
    "json-scalar": data_case("d.json", "42", "int"),
    "json-two-lists": data_case("d.json", '{"a": [], "b": []}', "2 list"),
    "json-syntax": data_case("d.json", '[{"instruction": "q",\n "output": }]', "line 2"),
    "json-items-not-objects": data_case("d.json", '[{"instruction": "q", "output": "a"}, 3]', "row 2"),
    "empty-file": data_case("d.jsonl", "", "no rows"),
    "unknown-suffix": data_case("d.txt", "hello\n", ".txt"),
    "row-missing-field": data_case("d.jsonl", GOOD_ROW * 3 + '{"instruction": "q"}\n', "row 4", "'output'"),
    "bad-chat-role": data_case("d.jsonl", '{"messages": [{"role": "wizard", "content": "hi"}]}\n', "row 1", "'wizard'"),
    "empty-chat": data_case("d.jsonl", '{"messages": []}\n', "row 1", "'messages'"),
    "not-a-dataset-folder": Case(
        lambda b: b.cli("validate", "--data", b.recipe(data=(b.tmp / "empty").mkdir() or b.tmp / "empty")),
        lambda b: [str(b.tmp / "empty")],
        "data files",
    ),
    "dataset-dict-corrupt": Case(
        lambda b: b.cli(
            "validate",
            "--data",
            b.recipe(data=b.write("dd/dataset_dict.json", "{splits").parent),
        ),
        lambda b: ["dataset_dict.json"],
        "data files",
    ),
    "missing-data-file": data_case("absent.jsonl", None, "does not exist"),
    "squad-answer-start": Case(
        lambda b: qa_bench(b, b.write("squad.json", squad_doc(start=3))),
        lambda b: ["squad.json", "row 1", "'q-7'", "answer_start 3"],
        "data files",
    ),
    "squad-no-qas": Case(
        lambda b: qa_bench(b, b.write("squad.json", squad_doc(qas=False))),
        lambda b: ["squad.json", "data[0].paragraphs[0]", "qas"],
        "data files",
    ),
    "columns-missing-column": Case(
        lambda b: b.cli("validate", "--data", b.recipe(data={"train": str(b.data), "columns": {"output": "answer"}})),
        lambda b: ["data.columns.output", "'answer'", "train.jsonl"],
        "data files",
    ),
    "train-parquet-garbage": train_case("d.parquet", b"PAR1 this is not parquet at all"),
    "train-jsonl-latin1": train_case("d.jsonl", LATIN1_JSONL, "line 1"),
    "train-row-missing-field": train_case("d.jsonl", GOOD_ROW * 3 + '{"output": "a"}\n', "row 4", "'instruction'"),
    "train-squad-layout-for-sft": train_case("d.json", squad_doc(), "squad", "sft"),
    # -- recipes ---------------------------------------------------------------------------------------------
    "unknown-top-key": recipe_case({"trainig": {}}, "'trainig'"),
    "typo-in-training": recipe_case({"training": {"epoch": 2}}, "training.epoch"),
    "typo-in-export": recipe_case({"export": {"pre_tokeniser": "llama3"}}, "export.pre_tokeniser"),
    "export-not-a-mapping": recipe_case({"export": ["q4_k_m"]}, "export"),
    "max-steps-zero": recipe_case({"training": {"max_steps": 0}}, "training.max_steps", "0"),
    "max-steps-minus-five": recipe_case({"training": {"max_steps": -5}}, "training.max_steps", "-5"),
    "negative-alpha": recipe_case({"method": {"name": "lora", "alpha": -8}}, "method.alpha", "-8"),
    "columns-unknown-field": recipe_case(
        {"data": {"train": "x.jsonl", "columns": {"instuction": "q"}}}, "'instuction'"
    ),
    "columns-field-of-another-format": recipe_case(
        {"data": {"train": "x.jsonl", "format": "alpaca", "columns": {"text": "body"}}}, "'text'", "alpaca"
    ),
    "devices-above-machine": recipe_case({"training": {"devices": 64}}, "training.devices", "64", command="train"),
    "fp16-on-cpu": recipe_case({"training": {"precision": "fp16"}}, "training.precision", "fp16", command="train"),
    "paged-optimizer-on-cpu": recipe_case(
        {"training": {"optimizer": "paged_adamw_8bit"}}, "paged_adamw_8bit", command="train"
    ),
    "bnb-optimizer-on-cpu": recipe_case(
        {"training": {"optimizer": "adamw_bnb_8bit"}}, "adamw_bnb_8bit", command="train"
    ),
    "bad-task": recipe_case({"task": "summarise"}, "task", "'summarise'"),
    "bad-method-combination": recipe_case({"task": "dpo", "method": "prompt_tuning"}, "prompt_tuning"),
    "eval-split-one": recipe_case({"data": {"train": "x.jsonl", "eval_split": 1.0}}, "data.eval_split"),
    "yaml-syntax": raw_recipe_case("task: sft\nmodel: [unclosed\n", "line"),
    "yaml-empty": raw_recipe_case("", "empty"),
    "yaml-a-list": raw_recipe_case("- task: sft\n", "list"),
    "yaml-latin1": raw_recipe_case("task: sft\nname: caf\xe9\n".encode("latin-1"), "UTF-8"),
    "missing-task": raw_recipe_case("model: m\ndata: d.jsonl\n", "'task'"),
    "recipe-not-found": Case(lambda b: b.cli("validate", b.tmp / "nope.yaml"), lambda b: ["nope.yaml"], "recipes"),
    "trust-remote-code-in-recipe": Case(trust_on_train, lambda b: ["recipe.yaml", "--trust-remote-code"], "recipes"),
    # -- --set values ----------------------------------------------------------------------------------------
    "set-no-equals": set_case("training.lr", "--set 'training.lr'"),
    "set-max-steps-zero": set_case("training.max_steps=0", "training.max_steps"),
    "set-negative-alpha": set_case("method.alpha=-1", "method.alpha"),
    "set-lr-word": set_case("training.lr=fast", "training.lr", "'fast'"),
    "set-batch-zero": set_case("training.batch_size=0", "training.batch_size"),
    "set-into-a-value": set_case("task.name=x", "--set task.name", "task"),
    "set-unknown-key": set_case("training.epoch=3", "training.epoch"),
    "set-export-typo": set_case("export.pre=llama3", "export.pre"),
    "set-columns-unknown": set_case("data.columns={promt: q}", "'promt'"),
    "set-devices-train": set_case("training.devices=99", "training.devices", "99", command="train"),
    "set-precision-train": set_case("training.precision=fp16", "fp16", command="train"),
    # -- references ------------------------------------------------------------------------------------------
    "show-unknown": ref_case("show", "nothing-like-this", names=("'nothing-like-this'",)),
    "logs-unknown": ref_case("logs", "zzz", names=("'zzz'",)),
    "stop-unknown": ref_case("stop", "zzz", names=("'zzz'",)),
    "resume-unknown": ref_case("resume", "zzz", names=("'zzz'",)),
    "show-last-empty": ref_case("show", "last", names=("last",)),
    "show-last-too-far": ref_case("show", "last~5", runs=(RUN_ID,), names=("last~5",)),
    "ambiguous-prefix": ref_case(
        "show", "20261122", runs=(RUN_ID, "20261122-000001-sft-other-cd34"), names=("20261122",)
    ),
    "export-unknown": ref_case("export", "zzz", names=("zzz",)),
    "chat-unknown-model": ref_case("chat", "zzz", "--prompt", "hi", names=("zzz",)),
    "predict-unknown-run": ref_case("predict", "zzz", "hello", names=("zzz",)),
    "bad-checkpoint-selector": ref_case("export", f"{RUN_ID}@checkpoint-9", runs=(RUN_ID,), names=("checkpoint-9",)),
    # -- transcripts -----------------------------------------------------------------------------------------
    "transcript-not-json": transcript_case("{chat\n", "not a JSON-lines"),
    "transcript-latin1": transcript_case(chat_lines(HEADER).encode() + b'{"x": "caf\xe9"}\n', "line 2"),
    "transcript-no-header": transcript_case(chat_lines({"type": "message"}), "header"),
    "transcript-header-not-object": transcript_case("[1, 2]\n", "header"),
    "transcript-escaping-id": transcript_case(chat_lines({**HEADER, "id": "../../../x"}), "'../../../x'"),
    "transcript-bad-message": transcript_case(chat_lines(HEADER, {"type": "message", "role": "root"}), "line 2"),
    "transcript-message-no-variant": transcript_case(
        chat_lines(HEADER, {"type": "message", "role": "user", "content": "hi"}), "line 2", "variant"
    ),
    "transcript-variant-unknown-key": transcript_case(
        chat_lines({**HEADER, "variants": [{"name": "b", "kind": "hf", "path": "m", "model": "x"}]}), "'model'"
    ),
    "transcript-settings-unknown": transcript_case(chat_lines({**HEADER, "settings": {"temp": 2}}), "'temp'"),
    "transcript-variants-not-list": transcript_case(chat_lines({**HEADER, "variants": {"a": 1}}), "variants"),
    "transcript-missing": Case(
        lambda b: b.cli("chat", "--resume", b.tmp / "gone.jsonl"), lambda b: ["gone.jsonl"], "transcripts"
    ),
    "transcript-unknown-id": Case(
        lambda b: b.cli("chat", "--resume", "20261122-zz"), lambda b: ["20261122-zz"], "transcripts"
    ),
    # -- state files -----------------------------------------------------------------------------------------
    "status-corrupt-show": state_case(corrupt_status("show"), "status.json"),
    "status-corrupt-logs": state_case(corrupt_status("logs"), "status.json"),
    "status-corrupt-stop": state_case(corrupt_status("stop"), "status.json"),
    "status-corrupt-resume": state_case(corrupt_status("resume"), "status.json"),
    "status-not-an-object": state_case(lambda b: b.run_folder(status="[1]") and b.cli("show", RUN_ID), "status.json"),
    "toml-syntax": state_case(with_toml("[export\nllama_cpp = 1\n"), "ftbench.toml"),
    "toml-latin1": state_case(with_toml(b"# caf\xe9\n"), "ftbench.toml"),
    "toml-wrong-type": state_case(with_toml("model_dirs = 3\n"), "ftbench.toml", "model_dirs"),
    "frozen-recipe-corrupt": state_case(resume_with_recipe("task: [sft\n"), "recipe.yaml"),
    "frozen-recipe-trust": state_case(trust_on_resume, "recipe.yaml", "--trust-remote-code"),
    # -- model files -----------------------------------------------------------------------------------------
    "export-wrong-base": model_case(wrong_base_export, "org/other-base-7b", "model", "in_features=16"),
    "adapter-config-corrupt": model_case(corrupt_adapter_config, "adapter_config.json"),
    "export-torn-safetensors": model_case(torn_weights("export", "MODEL"), "model.safetensors"),
    "estimate-torn-safetensors": model_case(torn_weights("estimate", "MODEL"), "model.safetensors"),
    "gguf-truncated-verify": model_case(gguf_verify, "cut.gguf"),
    "gguf-truncated-chat": model_case(gguf_chat, "cut.gguf"),
    "model-config-corrupt": model_case(broken_model_config, "config.json"),
    "prompts-not-json": model_case(prompts_file("{nope\n"), "prompts.jsonl", "line 1"),
    "prompts-latin1": model_case(prompts_file(b'{"prompt": "caf\xe9"}\n'), "prompts.jsonl", "line 1"),
    "prompts-no-prompt": model_case(prompts_file('{"question": "x"}\n'), "prompts.jsonl", "line 1"),
    "predict-file-latin1": model_case(predict_file(b'{"text": "caf\xe9"}\n'), "inputs.jsonl", "line 1"),
    "predict-file-not-json": model_case(predict_file("[1,\n"), "inputs.jsonl", "line 1"),
    "predict-file-number": model_case(predict_file("42\n"), "inputs.jsonl", "line 1"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_sentence_and_changes_nothing(name: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("FTBENCH_DDP_CPU", raising=False)
    monkeypatch.chdir(tmp_path)
    bench = Bench(tmp_path)
    case = CASES[name]
    argv = case.setup(bench)
    capsys.readouterr()
    before = snapshot(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, f"exit {code}; stderr: {err}"
    assert "Traceback" not in err + out and len(errors) == 1, err
    for word in case.names(bench):
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    assert snapshot(tmp_path) == before


def test_the_corpus_is_big_enough() -> None:
    groups: dict[str, int] = {}
    for case in CASES.values():
        groups[case.group] = groups.get(case.group, 0) + 1
    assert len(CASES) >= 60 and all(count >= 5 for count in groups.values()), groups


def test_listings_name_a_broken_file_and_list_the_rest(tmp_path: Path, capsys) -> None:
    """`models`, `datasets` and `chat --list` cannot refuse one broken file among many: each lists the others
    and names the broken one (on stderr, so --json stays clean), without a traceback."""
    bench = Bench(tmp_path)
    models, datasets, chats = bench.ws.models_dir, bench.ws.datasets_dir, bench.ws.chats_dir
    for folder in (models / "good", models / "torn", datasets, chats):
        folder.mkdir(parents=True, exist_ok=True)
    safetensors_file(models / "good" / "model.safetensors", {"w": (4, 4)})
    (models / "good" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (models / "torn" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (models / "torn" / "model.safetensors").write_bytes(b"\xff" * 20)
    (models / "cut.gguf").write_bytes(gguf_truncated())
    (datasets / "good.jsonl").write_text(GOOD_ROW)
    (datasets / "bad.parquet").write_bytes(b"PAR1 torn")
    (chats / f"{CHAT_ID}.jsonl").write_text(chat_lines(HEADER))
    (chats / "20261122-000001-chat-cd34.jsonl").write_text("{torn\n")
    torn, cut, chat = (
        models / "torn" / "model.safetensors",
        models / "cut.gguf",
        chats / "20261122-000001-chat-cd34.jsonl",
    )
    runs = {
        "models": (["models", "--no-hf-cache"], ["good", "torn", "cut.gguf"], [str(torn), str(cut)]),
        "datasets": (["datasets", "--no-hf-cache"], ["good.jsonl", f"Cannot read {datasets / 'bad.parquet'}"], []),
        "chat --list": (["chat", "--list"], [CHAT_ID], [str(chat)]),
    }
    for argv, listed, named in runs.values():
        capsys.readouterr()
        code = main(bench.cli(*argv))
        out, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in out + err, err
        assert all(name in out for name in listed), out
        for path in named:
            assert any(line.startswith("note: ") and path in line for line in err.splitlines()), (path, err)


def gpu_report(count: int):
    from ftbench.core.gpu import GpuInfo, GpuReport

    gpus = [GpuInfo(index=i, name="NVIDIA T4", mem_total=16 * 1024**3) for i in range(count)]
    return GpuReport(bool(gpus), gpus, reason="" if gpus else "no GPU")


@pytest.mark.parametrize(
    ("training", "gpus", "capability", "refused"),
    [
        ({"precision": "bf16"}, 1, (7, 5), "training.precision bf16 needs an Ampere or newer GPU; GPU 0"),
        ({"precision": "bf16"}, 1, (8, 0), None),
        ({"precision": "bf16"}, 0, None, None),  # bf16 runs on the CPU
        ({"precision": "fp16"}, 1, (7, 5), None),
        ({"precision": "fp16"}, 0, None, "training.precision fp16 needs a GPU, but this machine has no NVIDIA GPU"),
        ({"optimizer": "paged_adamw_32bit"}, 1, (8, 0), None),
        ({"optimizer": "paged_adamw_32bit"}, 0, None, "training.optimizer paged_adamw_32bit runs on CUDA only"),
        ({"devices": 2}, 2, (8, 0), None),
        ({"devices": 3}, 2, (8, 0), "training.devices is 3, but this machine has 2 GPUs"),
        ({"devices": 1}, 0, None, None),
    ],
)
def test_machine_checks(training: dict, gpus: int, capability, refused: str | None, monkeypatch) -> None:
    from ftbench.core import gpu
    from ftbench.core.errors import FtbenchError
    from ftbench.core.recipe import check_machine, validate_recipe

    monkeypatch.delenv("FTBENCH_DDP_CPU", raising=False)
    monkeypatch.setattr(gpu, "compute_capability", lambda index: capability)
    recipe = validate_recipe({"task": "sft", "model": "m", "data": "d.jsonl", "training": training})
    if refused is None:
        check_machine(recipe, gpu_report(gpus), "r.yaml")
        return
    with pytest.raises(FtbenchError) as err:
        check_machine(recipe, gpu_report(gpus), "r.yaml")
    assert err.value.message.startswith(f"r.yaml: {refused}") and err.value.hint


def test_cpu_processes_may_outnumber_gpus_when_asked(monkeypatch) -> None:
    from ftbench.core.recipe import check_machine, validate_recipe

    monkeypatch.setenv("FTBENCH_DDP_CPU", "1")  # what the 2-process CPU tests set
    check_machine(
        validate_recipe({"task": "sft", "model": "m", "data": "d", "training": {"devices": 2}}), gpu_report(0), "r"
    )


def test_compute_capability_comes_from_nvml(monkeypatch) -> None:
    import sys
    import types

    from ftbench.core import gpu

    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: None
    fake.nvmlDeviceGetHandleByIndex = lambda index: index
    fake.nvmlDeviceGetCudaComputeCapability = lambda handle: [(7, 5), (9, 0)][handle]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpu.reset_sampler()
    try:
        assert [gpu.compute_capability(0), gpu.compute_capability(1), gpu.compute_capability(5)] == [
            (7, 5),
            (9, 0),
            None,
        ]
    finally:
        gpu.reset_sampler()


def test_an_adapter_that_fits_its_base_passes_the_shape_check(tmp_path: Path) -> None:
    """The wrong-base check must not refuse a good adapter (a layer the base files lack, such as a tied lm_head,
    is not evidence either way)."""
    from ftbench.chat.adapter_checks import adapter_file_mismatch
    from ftbench.export.merge import read_adapter

    bench = Bench(tmp_path)
    adapter = adapter_on(bench, 16)
    safetensors_file(
        adapter / "adapter_model.safetensors",
        {
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": (4, 16),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": (16, 4),
            "base_model.model.lm_head.lora_A.weight": (4, 16),
        },
    )
    assert adapter_file_mismatch(adapter, bench.model) is None
    assert read_adapter(adapter, bench.model).base_dir == bench.model
    assert "in_features=16" in str(adapter_file_mismatch(adapter_on(bench, 32), bench.model))
