"""`ftbench predict RUN TEXT... [--file rows.jsonl] [--json]`: try a classification, NER or QA run.

Texts come from the command line and/or a JSONL file (one object per line: `text`, or `tokens` for NER, or
`question` + `context` for QA; a plain string line also works). For QA on the command line, write
"question ||| context". The model is loaded in this process (these runs are small encoders); heavy imports
happen inside the handler only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.core.errors import FtbenchError
from ftbench.core.text_files import read_text
from ftbench.core.workspace import Workspace


def register(sub: Any) -> None:
    p = subparser(sub, "predict", "predict with a classification, NER or QA run: labels, entities or answers")
    p.add_argument("run", help="run id, unique prefix, or folder")
    p.add_argument("texts", nargs="*", metavar="TEXT", help='input texts; for QA "question ||| context"')
    p.add_argument("--file", "-i", metavar="ROWS.jsonl", help="JSONL inputs: text | tokens | question+context per line")
    p.add_argument("--json", action="store_true", help="print a JSON list of results")
    p.add_argument("--batch-size", type=int, default=16, help="inputs per forward pass (default 16)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the run's model folder")
    p.set_defaults(func=cmd_predict)


def read_inputs(path: str) -> list[str | dict[str, Any]]:
    """Rows of a JSONL file (objects or strings), with the line number in any error."""
    p = Path(path)
    if not p.is_file():
        raise FtbenchError(f"Input file {p} does not exist.", "Give --file a JSONL file, one input per line.")
    items: list[str | dict[str, Any]] = []
    for number, line in enumerate(read_text(p, "input files").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FtbenchError(
                f"{p} line {number} is not valid JSON: {exc.msg}.", "Each line must be a JSON object or string."
            ) from None
        if not isinstance(value, (str, dict)):
            raise FtbenchError(
                f"{p} line {number} is a {type(value).__name__}, not an object or string.",
                'Use {"text": "..."} per line.',
            )
        items.append(value)
    return items


def run_dir_of(ref: str, ws: Workspace) -> Path:
    """A run (id, unique prefix, `last`, folder) or a bare weights folder, in the artifacts lookup order."""
    from ftbench.core.artifacts import resolve

    return resolve(ws, ref, want=("run", "adapter", "model")).path


def cmd_predict(args: argparse.Namespace, ws: Workspace) -> int:
    inputs: list[str | dict[str, Any]] = list(args.texts)
    if args.file:
        inputs.extend(read_inputs(args.file))
    if not inputs:
        raise FtbenchError(
            "Nothing to predict: give TEXT arguments or --file rows.jsonl.",
            'Example: ftbench predict RUN "great battery life"',
        )
    if args.batch_size < 1:
        raise FtbenchError(f"--batch-size {args.batch_size} must be at least 1.", "Use the default 16.")
    from ftbench.train.predict import finite, format_result, load_predictor, predict

    predictor = load_predictor(run_dir_of(args.run, ws), trust_remote_code=args.trust_remote_code)
    results = predict(predictor, inputs, batch_size=args.batch_size)
    if args.json:
        print_json([finite(r) for r in results])
    else:
        for result in results:
            sys.stdout.write(format_result(predictor.task, result) + "\n")
    return 0
