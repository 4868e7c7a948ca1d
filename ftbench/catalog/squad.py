"""The original SQuAD file layout (`{"version", "data": [{title, paragraphs: [{context, qas: [...]}]}]}`) as rows.

Why here: the SQuAD v1.1 / v2.0 files as published nest questions under paragraphs under articles, while the
squad format (core/specs.py) is one question per row, as Hugging Face's `squad` dataset has it. The JSON reader
flattens the nesting once, so the Datasets screen, `validate --data` and the QA task all see the same rows,
numbered in file order (row N is the N-th question of the file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError

HINT = "Each article needs `paragraphs`, each paragraph a `context` string and a `qas` list (SQuAD v1.1 / v2.0)."


def is_squad_document(document: Any) -> bool:
    """A JSON object whose `data` list holds articles with `paragraphs` (the layout SQuAD is published in)."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list) or not document["data"]:
        return False
    first = document["data"][0]
    return isinstance(first, dict) and "paragraphs" in first


def squad_rows(document: dict[str, Any], path: Path) -> list[Any]:
    """One row per question: id, title, context, question, answers {text, answer_start} (and, in v2.0,
    is_impossible and plausible_answers). A broken article or paragraph is named by its position."""
    rows: list[Any] = []
    for a, article in enumerate(document["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise FtbenchError(f"{path}: data[{a}] has no `paragraphs` list.", HINT)
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise FtbenchError(f"{path}: {where} has no `qas` list.", HINT)
            for question in paragraph["qas"]:
                rows.append(_row(question, paragraph.get("context"), article.get("title")))
    return rows


def _row(question: Any, context: Any, title: Any) -> Any:
    if not isinstance(question, dict):
        return question  # the reader reports "not an object" for this row, like any other
    row: dict[str, Any] = {
        "id": question.get("id"),
        "title": title,
        "context": context,
        "question": question.get("question"),
        "answers": _answers(question.get("answers")),
    }
    if "is_impossible" in question:
        row["is_impossible"] = question["is_impossible"]
    if "plausible_answers" in question:
        row["plausible_answers"] = _answers(question["plausible_answers"])
    return row


def _answers(answers: Any) -> Any:
    """SQuAD's `[{text, answer_start}, ...]` as the columnar `{text: [...], answer_start: [...]}`; anything
    else is kept as is, so the row check names what is wrong with it."""
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        return answers
    return {"text": [a.get("text") for a in answers], "answer_start": [a.get("answer_start") for a in answers]}
