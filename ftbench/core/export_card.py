"""The export result card: files and sizes, verification numbers, how to run them.

Plain text from an export job's `result`, with no heavy imports, so the CLI prints it and the TUI's Jobs
screen shows the same card for a finished export. It lives in core (not export/) because it only reads a job's
result, and the TUI may not import the export package.
"""

from __future__ import annotations

from typing import Any


def render_card(result: dict[str, Any]) -> str:
    lines = [f"Export of {result.get('source', '?')}" + (" - did not finish" if result.get("failed") else "")]
    if result.get("converter"):
        lines.append(f"  converter: {result['converter']}")
    if result.get("pre_tokenizer"):
        lines.append(f"  pre-tokenizer: {result['pre_tokenizer']['name']} ({result['pre_tokenizer']['how']})")
    for f in result.get("files", []):
        lines.append(f"  {f['type']:<9} {f['bytes'] / 1e6:9.1f} MB  {f['path']}")  # one unit: sizes line up
    for c in result.get("verify", []):
        nmse = "n/a" if c.get("nmse") is None else f"{c['nmse']:.2e}"
        kl = "n/a" if c.get("kl") is None else f"{c['kl']:.2e}"
        top1 = "n/a" if c.get("top1") is None else f"{c['top1']:.1%}"
        lines.append(
            f"  verify {c['type'].upper():<7} {'PASS' if c['passed'] else 'FAIL'}  tokens {'=' if c['tokens_match'] else '!='}"
            f"  NMSE {nmse}  top-1 {top1}  KL {kl}"
        )
    for row in result.get("retention", []):
        lines.append(f"  eval   {row['sentence']}")
    if result.get("note"):
        lines.append(f"  note: {result['note']}")
    for name, cmd in (result.get("commands") or {}).items():
        lines.append(f"  {name}: {cmd}")
    return "\n".join(lines)
