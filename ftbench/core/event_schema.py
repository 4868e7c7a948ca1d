"""The event schema: every kind of line in a job's events.jsonl, with its fields, in one table.

Why a table: the trainer, exporter, demo builder and job runner write events; the Jobs, Runs and Monitor
screens and `ftbench train --follow` read them. When the two sides spell a key differently the screen silently
shows nothing (the peak-memory line once never appeared because the writer said `torch_peak_allocated` and the
reader `torch_peak_alloc`). So both sides go through this module: `encode_event` (used by `EventWriter.emit`)
builds every line, `parse_event` (used by `EventTail`) reads every line into an `Event` that refuses to be
asked for a key nobody declared, and tests/unit/test_event_contract.py checks that every key a producer writes
is declared here and every declared key is written by some producer.

Compatibility rules, so old job folders keep working and new writers never break old readers:
- every line carries `v` (SCHEMA_VERSION), `t`, `type` and `attempt`; lines without `v` are version 0;
- unknown fields are kept (`Event.extra`), missing declared fields are explicit (`Event.missing`, and `get`
  returns the default); a kind this version does not know parses with all its fields as extras;
- renaming or retyping a field is a new SCHEMA_VERSION; adding an optional field or a kind is not.

Adding a kind is a one-entry change: append `Kind("name", "why it exists", fields(...))` to `KINDS` below
(and write it with `ctx.emit("name", ...)`). Kinds marked `reserved` are names held for features being added
elsewhere (evaluation, serving, the job queue); they accept any field until their owner declares them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
ENVELOPE = ("v", "t", "type", "attempt")
NUMBER = (int, float)


@dataclass(frozen=True)
class Field:
    name: str
    types: tuple[type, ...]
    doc: str


@dataclass(frozen=True)
class Kind:
    """One event kind: its declared fields, plus which undeclared ones it allows (`prefixes`, `numeric_extras`)."""

    name: str
    doc: str
    fields: tuple[Field, ...] = ()
    prefixes: tuple[str, ...] = ()  # e.g. `rewards/` for DPO's per-step reward metrics
    numeric_extras: bool = False  # any further numeric field is a metric (eval: accuracy, f1, ...)
    reserved: bool = False  # held for a feature being added; any field allowed until declared

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)

    def allows(self, key: str, value: Any = None) -> bool:
        """Whether a producer may write `key` (with `value`) in this kind."""
        if self.reserved or key in ENVELOPE or key in self.names or key.startswith(self.prefixes):
            return True
        return self.numeric_extras and (value is None or isinstance(value, NUMBER))


def fields(*specs: tuple[str, tuple[type, ...] | type, str]) -> tuple[Field, ...]:
    return tuple(Field(name, types if isinstance(types, tuple) else (types,), doc) for name, types, doc in specs)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "train",
            "one Trainer logging step",
            fields(
                ("step", int, "optimizer steps done (global, continues across resumed attempts)"),
                ("max_steps", int, "total optimizer steps of the run, epochs converted to steps up front"),
                ("epoch", NUMBER, "fractional epoch"),
                ("loss", NUMBER, "training loss averaged since the previous logging step"),
                ("lr", NUMBER, "learning rate"),
                ("grad_norm", NUMBER, "gradient norm before clipping"),
                ("tokens", int, "real (non-padding) tokens seen, all ranks"),
                ("tokens_per_s", NUMBER, "tokens/s since the previous logging step"),
                ("eta_s", NUMBER, "seconds left at this attempt's measured step rate"),
            ),
            prefixes=("rewards/", "logps/"),
        ),
        Kind(
            "eval",
            "one evaluation pass; task metrics (accuracy, f1, ...) ride along as numeric extras",
            fields(
                ("step", int, "optimizer step evaluated at"),
                ("epoch", NUMBER, "fractional epoch"),
                ("eval_loss", NUMBER, "loss on the eval split"),
                ("perplexity", NUMBER, "exp(eval_loss), for language models"),
            ),
            numeric_extras=True,
        ),
        Kind(
            "progress",
            "a phase of a job and how far it is (training, loading model, quantize, ...)",
            fields(
                ("phase", str, "what the job is doing"),
                ("done", NUMBER, "units done"),
                ("total", NUMBER, "units in the phase, when known"),
                ("eta_s", NUMBER, "seconds left in the phase, when measurable"),
                ("variant", str, "the variant being scored, for eval jobs"),
                ("examples_per_s", NUMBER, "examples scored per second, for eval jobs"),
            ),
        ),
        Kind(
            "gpu",
            "a sample of every GPU (NVML) and of torch's allocator",
            fields(
                ("devices", list, "GpuInfo.as_event() per device"),
                ("torch_peak_allocated", int, "bytes: torch.cuda.max_memory_allocated summed over devices"),
            ),
        ),
        Kind(
            "checkpoint",
            "a Trainer checkpoint was saved",
            fields(
                ("step", int, "optimizer step of the checkpoint"),
                ("path", str, "folder, relative to the job folder"),
            ),
        ),
        Kind(
            "log",
            "a line for people",
            fields(
                ("level", str, "info, warning or error"),
                ("message", str, "the text"),
                ("data_summary", dict, "what the data loader found (rows, labels), for tasks that report it"),
            ),
        ),
        Kind(
            "state",
            "the job's lifecycle state changed (also in status.json)",
            fields(
                ("state", str, "running, succeeded, failed, stopped"),
                ("error", dict, "message and hint when failed"),
            ),
        ),
        Kind(
            "evaluation",
            "an eval job's finished scores (also in metrics.json)",
            fields(
                ("variants", dict, "variant name -> its aggregate metrics"),
            ),
        ),
        Kind(
            "serve_request",
            "one request answered by `ftbench serve`, with the server's running totals",
            fields(
                ("path", str, "the endpoint, /v1/chat/completions or /v1/completions"),
                ("model", str, "the variant name the request asked for"),
                ("status", int, "the HTTP status sent"),
                ("prompt_tokens", int, "tokens in the prompt"),
                ("completion_tokens", int, "tokens generated"),
                ("latency_s", NUMBER, "seconds from receipt to the last byte"),
                ("total_requests", int, "requests answered so far"),
                ("total_errors", int, "requests that failed so far"),
                ("total_prompt_tokens", int, "prompt tokens so far"),
                ("total_completion_tokens", int, "generated tokens so far"),
                ("total_tok_s", NUMBER, "generated tokens per busy second so far"),
            ),
        ),
        Kind(
            "objective",
            "the key metric of an objective trained through TRL (orpo, simpo, kto, grpo) at a logging step",
            fields(
                ("step", int, "optimizer step"),
                ("objective", str, "the task: orpo, simpo, kto or grpo"),
                ("metric", str, "which companion field `value` repeats: reward (grpo) or margin (preference)"),
                ("value", NUMBER, "the key metric, for the monitor's objective line"),
                ("reward", NUMBER, "grpo: mean total reward of the sampled completions"),
                ("reward_std", NUMBER, "grpo: standard deviation of that reward"),
                ("completion_length", NUMBER, "grpo: mean length of the sampled completions, in tokens"),
                ("kl", NUMBER, "KL to the reference model (kto; grpo with grpo.beta > 0)"),
                ("margin", NUMBER, "mean reward of chosen minus rejected answers"),
                ("accuracy", NUMBER, "fraction of pairs whose chosen answer has the higher reward"),
                ("chosen", NUMBER, "mean reward of the chosen (good) answers"),
                ("rejected", NUMBER, "mean reward of the rejected (bad) answers"),
            ),
        ),
        Kind("queue", "reserved for the job queue's events", reserved=True),
    )
}


class UndeclaredField(LookupError):
    """A reader asked for a key that its event kind does not declare and that is not in the event.

    Deliberately not a KeyError, so `Event.get(key, default)` does not swallow it: a misspelt key is a bug to
    fix, not a missing value to show as blank.
    """


class Event(dict):
    """A parsed event: the JSON object as written (a dict, so json.dumps and copies work), read strictly.

    `event[key]` / `event.get(key)` return the value when present; a declared field that is absent is missing
    (KeyError / the default); a key that is neither present nor declared raises UndeclaredField.
    """

    kind: str
    spec: Kind | None
    version: int

    def _check(self, key: str) -> None:
        if (
            self.spec is not None
            and not dict.__contains__(self, key)
            and key not in ENVELOPE
            and not self.spec.allows(key)
        ):
            raise UndeclaredField(
                f"Event kind {self.kind!r} has no field {key!r}; declared: {sorted(self.spec.names)}."
            )

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self._check(key)
        return dict.get(self, key, default)

    @property
    def attempt(self) -> int:
        value = dict.get(self, "attempt", 1)
        return value if isinstance(value, int) else 1

    @property
    def missing(self) -> frozenset[str]:
        """Declared fields this event does not carry."""
        return self.spec.names - self.keys() if self.spec else frozenset()

    @property
    def extra(self) -> dict[str, Any]:
        """Fields the schema does not declare for this kind (kept, never dropped)."""
        declared = self.spec.names if self.spec else frozenset()
        return {k: v for k, v in self.items() if k not in declared and k not in ENVELOPE}


def encode_event(kind: str, fields: dict[str, Any], attempt: int) -> dict[str, Any]:
    """The object `EventWriter.emit` writes: envelope first, then the fields, non-finite floats as null."""
    return _finite({"v": SCHEMA_VERSION, "t": round(time.time(), 3), "type": kind, "attempt": attempt, **fields})


def parse_event(obj: Any) -> Event | None:
    """One decoded JSON line as an Event; None when it is not an event object at all."""
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return None
    event = Event(obj)
    event.kind = obj["type"]
    event.spec = KINDS.get(event.kind)
    version = obj.get("v", 0)
    event.version = version if isinstance(version, int) else 0
    return event


def problems(kind: str, fields: dict[str, Any]) -> list[str]:
    """What is wrong with an event a producer writes: an unknown kind, an undeclared field, a wrong type."""
    spec = KINDS.get(kind)
    if spec is None:
        return [f"event kind {kind!r} is not in ftbench/core/event_schema.py KINDS (add one entry there)"]
    out = []
    declared = {f.name: f for f in spec.fields}
    for key, value in fields.items():
        if key in ENVELOPE:
            continue
        if not spec.allows(key, value):
            out.append(f"{kind}.{key} is not declared in ftbench/core/event_schema.py (declared: {sorted(declared)})")
        elif key in declared and value is not None and not isinstance(value, declared[key].types):
            want = "/".join(t.__name__ for t in declared[key].types)
            out.append(f"{kind}.{key} is {type(value).__name__} {value!r}, declared {want}")
    return out


def _finite(value: Any) -> Any:
    """NaN and inf (a diverged loss) become null, so every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
