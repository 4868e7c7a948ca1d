"""The event contract between the programs that write events.jsonl and the screens that read it.

Producers: every `.emit("kind", key=...)` and `.progress("phase", ..., key=...)` call in the code, found by
parsing the source (so a branch no test reaches still counts), plus every line of the job folders recorded
from real runs (tests/tui/fixtures). Consumers read through `event_schema.Event`, which raises on a key its
kind does not declare; so the contract is: every key written is declared, and every declared key is written.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from ftbench.core.event_schema import KINDS, Event, UndeclaredField, parse_event, problems
from ftbench.core.events import EventWriter, read_events

REPO = Path(__file__).resolve().parents[2]
PRODUCER_ROOTS = [REPO / "ftbench", REPO / "scripts", REPO / "tests" / "tui" / "fakejob.py"]
PROGRESS_POSITIONAL = ("phase", "done", "total")


def _literal(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ...  # a value only known at run time: its key still counts, its type is not checked


def producer_calls(source: str, filename: str) -> list[tuple[str, str, object, str]]:
    """(kind, key, value-or-..., where) for every literal event write in one module's source."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        where = f"{filename}:{node.lineno}"
        if node.func.attr == "emit":
            kind = first.value
            keys = [(kw.arg, _literal(kw.value)) for kw in node.keywords if kw.arg]
        elif node.func.attr == "progress":
            kind = "progress"
            keys = [(name, ...) for name in PROGRESS_POSITIONAL[: len(node.args)]]
            keys += [(kw.arg, _literal(kw.value)) for kw in node.keywords if kw.arg]
        else:
            continue
        out.extend((kind, key, value, where) for key, value in keys)
        if not keys:
            out.append((kind, "", ..., where))
    return out


def scan(roots: list[Path], replace: tuple[str, str] | None = None) -> list[tuple[str, str, object, str]]:
    found = []
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if replace:
                text = text.replace(*replace)
            found += producer_calls(text, str(path.relative_to(REPO)))
    return found


def violations(calls: list[tuple[str, str, object, str]]) -> list[str]:
    out = []
    for kind, key, value, where in calls:
        fields = {key: None if value is ... else value} if key else {}
        out += [f"{where}: {p}" for p in problems(kind, fields)]
    return out


def test_every_key_a_producer_writes_is_declared():
    calls = scan(PRODUCER_ROOTS)
    assert len({c[3] for c in calls}) >= 15, "the scanner found too few emit calls to be looking at the right code"
    assert violations(calls) == []


def test_every_declared_key_is_written_by_some_producer():
    written = defaultdict(set)
    for kind, key, _, _ in scan(PRODUCER_ROOTS):
        written[kind].add(key)
    unwritten = [
        f"{k.name}.{f.name}"
        for k in KINDS.values()
        if not k.reserved
        for f in k.fields
        if f.name not in written[k.name]
    ]
    assert unwritten == [], "declared fields no producer writes: a reader of these would show blanks forever"


def test_a_renamed_producer_key_fails_the_contract():
    """The bug this exists for: the GPU sampler's key renamed on one side only."""
    calls = scan([REPO / "ftbench" / "train" / "callbacks.py"], replace=("torch_peak_allocated", "torch_peak_alloc"))
    found = violations(calls)
    assert any("gpu.torch_peak_alloc is not declared" in v for v in found), found
    renamed_train = scan([REPO / "ftbench" / "train" / "callbacks.py"], replace=("max_steps=", "total_steps="))
    assert any("train.total_steps is not declared" in v for v in violations(renamed_train))
    # ...and a declared key that nothing writes any more is reported by the other direction
    written = {(k, key) for k, key, _, _ in renamed_train}
    assert ("train", "max_steps") not in written


def test_a_consumer_asking_for_an_undeclared_key_fails_loudly(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as writer:
        writer.emit("gpu", devices=[], torch_peak_allocated=3 * 1024**3)
        writer.emit("train", step=1, loss=2.0)
    gpu, train = read_events(path)
    assert isinstance(gpu, Event) and gpu.get("torch_peak_allocated") == 3 * 1024**3
    with pytest.raises(UndeclaredField, match="torch_peak_alloc"):
        gpu.get("torch_peak_alloc")  # the old reader's spelling
    assert train.get("max_steps") is None and "max_steps" in train.missing  # declared but not written: explicit
    assert train.get("eta_s", "n/a") == "n/a"


def test_the_monitor_reads_only_declared_keys_of_real_events():
    """Fold every recorded event (real runs) into the monitor's model; an undeclared read would raise here."""
    from ftbench.tui.widgets.job_list import format_event
    from ftbench.tui.widgets.run_data import RunView

    files = sorted((REPO / "tests" / "tui" / "fixtures").rglob("events.jsonl"))
    assert files, "no recorded fixtures: run scripts/record_fixtures.py"
    for path in files:
        events = read_events(path)
        assert all(problems(e.kind, dict(e)) == [] for e in events), path
        view = RunView()
        view.add_all(events)
        assert all(format_event(e) for e in events)


def test_unknown_kinds_and_fields_are_kept_and_versions_read():
    event = parse_event({"type": "from-the-future", "v": 9, "t": 1.0, "attempt": 2, "anything": [1]})
    assert event.kind == "from-the-future" and event.version == 9 and event.attempt == 2
    assert event.get("anything") == [1] and event.extra == {"anything": [1]}
    old = parse_event({"type": "train", "step": 3, "loss": 1.0, "new_metric": 0.5})
    assert old.version == 0 and old.extra == {"new_metric": 0.5} and old["new_metric"] == 0.5
    assert parse_event(["not", "an", "event"]) is None and parse_event({"no": "type"}) is None


def test_emitted_lines_carry_the_envelope_and_types_are_checked(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path, attempt=3) as writer:
        written = writer.emit("eval", step=4, eval_loss=float("inf"), accuracy=0.75)
    (event,) = read_events(path)
    assert event == written and event["v"] == 1 and event.attempt == 3 and event["eval_loss"] is None
    assert event.get("accuracy") == 0.75  # eval carries task metrics as numeric extras
    assert problems("eval", {"accuracy": "high"}) and problems("train", {"step": "one"})
    assert problems("no-such-kind", {})[0].startswith("event kind 'no-such-kind' is not in")
    assert not problems("queue", {"anything": 1})  # reserved for another feature: open until declared
