"""Reading a text file someone else may have written, with its failures as one sentence naming the file.

Why one home: every file ftbench reads as text (recipes, ftbench.toml, transcripts, prompt and input files,
status.json, data files) can be unreadable or not UTF-8, and a bare `UnicodeDecodeError` names no file. Text
that is not UTF-8 is refused with the line and byte, never silently turned into U+FFFD.
"""

from __future__ import annotations

from pathlib import Path

from ftbench.core.errors import FtbenchError

NOT_UTF8_HINT = (
    'Save the file as UTF-8 (in a spreadsheet: "CSV UTF-8"), or convert it, e.g. `iconv -f latin1 -t utf-8 IN > OUT`.'
)


def not_utf8(raw: bytes, exc: UnicodeDecodeError) -> str:
    """Where and what the first byte is that is not UTF-8 text."""
    return f"not UTF-8 text (byte 0x{raw[exc.start]:02X} at column {exc.start + 1})"


def first_non_utf8(path: Path) -> tuple[int, str] | None:
    """Line number and description of the first line of `path` that is not UTF-8 text, if any."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, not_utf8(raw, exc)
    return None


def not_utf8_error(path: Path, what: str = "data files") -> FtbenchError:
    """One sentence naming the file and the first line that is not UTF-8."""
    where = first_non_utf8(path)
    line = f" line {where[0]}" if where else ""
    problem = where[1] if where else "not UTF-8 text"
    return FtbenchError(f"{path}{line} is {problem}; ftbench reads {what} as UTF-8.", NOT_UTF8_HINT)


def read_text(path: str | Path, what: str = "this file", hint: str | None = None) -> str:
    """The file's text (UTF-8; a byte-order mark is dropped), or a FtbenchError naming it and why not.

    `what` names the kind of file in the sentence ("recipes", "transcripts"); `hint` replaces the default
    advice for an unreadable file.
    """
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise not_utf8_error(p, what) from None
    except FileNotFoundError as exc:
        raise FtbenchError(f"{p} does not exist.", hint or "Check the path.") from exc
    except OSError as exc:
        raise FtbenchError(f"Cannot read {p}: {exc.strerror or exc}.", hint or "Check the file's permissions.") from exc
