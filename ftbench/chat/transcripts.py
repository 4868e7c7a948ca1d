"""Saved chats: <workspace>/chats/<id>.jsonl, reopened later with every column's own history.

The first line is a header (the columns' variant specs, the shared settings and per-column overrides);
each later line is one message of one column. The whole file is rewritten atomically on every save, so a
crash never leaves a torn transcript. No heavy imports: the TUI uses this directly.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.chat.protocol import GenSettings, VariantSpec
from ftbench.core.atomic import atomic_write_text
from ftbench.core.disk_full import free_bytes, is_disk_full, mount_point
from ftbench.core.errors import FtbenchError
from ftbench.core.humanize import human_size
from ftbench.core.jobs import new_job_id
from ftbench.core.safe_paths import inside
from ftbench.core.text_files import read_text
from ftbench.core.workspace import Workspace

FORMAT_VERSION = 1
# What an id may look like: it becomes <chats>/<id>.jsonl, so no separators, no leading dot, no '..'.
CHAT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")
# Options a transcript may not carry: trust is given on the live command line or in the live TUI prompt only,
# so a shared transcript cannot switch on a model folder's own Python.
LIVE_ONLY_OPTIONS = ("trust_remote_code",)


def check_chat_id(chat_id: object, where: str) -> str:
    if not isinstance(chat_id, str) or len(chat_id) > 120 or not CHAT_ID_RE.fullmatch(chat_id):
        raise FtbenchError(
            f"{where} has chat id {chat_id!r}, which is not a plain name.",
            "A chat id uses letters, digits, '-', '_' and inner dots only; fix the header's \"id\".",
        )
    return chat_id


@dataclass
class Transcript:
    """A chat session: columns, settings, and one message list per column."""

    id: str
    variants: list[VariantSpec]
    settings: GenSettings = field(default_factory=GenSettings)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    title: str = ""
    created: float = field(default_factory=time.time)

    @classmethod
    def new(cls, variants: list[VariantSpec], settings: GenSettings | None = None, title: str = "") -> Transcript:
        return cls(
            id=new_job_id("chat", title), variants=list(variants), settings=settings or GenSettings(), title=title
        )

    def messages(self, variant: str) -> list[dict[str, str]]:
        """The history of one column as plain {role, content} for the model."""
        return [{"role": m["role"], "content": m["content"]} for m in self.history.get(variant, [])]

    def add(self, variant: str, role: str, content: str, **stats: Any) -> None:
        entry: dict[str, Any] = {"role": role, "content": content, "time": round(time.time(), 3)}
        entry.update({k: v for k, v in stats.items() if v is not None})
        self.history.setdefault(variant, []).append(entry)

    def settings_for(self, variant: str) -> GenSettings:
        return self.settings.merged(self.overrides.get(variant))

    def path(self, ws: Workspace) -> Path:
        check_chat_id(self.id, "This chat")
        return inside(ws.chats_dir, ws.chats_dir / f"{self.id}.jsonl")

    def to_lines(self) -> list[dict[str, Any]]:
        header = {
            "type": "chat",
            "version": FORMAT_VERSION,
            "id": self.id,
            "title": self.title,
            "created": self.created,
            "variants": [v.to_dict() for v in self.variants],
            "settings": self.settings.to_dict(),
            "overrides": self.overrides,
        }
        lines = [header]
        for variant, msgs in self.history.items():
            lines += [{"type": "message", "variant": variant, **m} for m in msgs]
        return lines

    def save(self, ws: Workspace) -> Path:
        path = self.path(ws)
        atomic_write_text(path, "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in self.to_lines()))
        return path

    def try_save(self, ws: Workspace) -> tuple[Path | None, str | None]:
        """`save`, or (None, a warning) when the disk refuses: the chat stays in memory, the file on disk is
        still the last good save (atomic writes), and the next save tries again."""
        try:
            return self.save(ws), None
        except OSError as exc:
            folder = ws.chats_dir if ws.chats_dir.exists() else ws.root
            reason = (
                f"disk full ({human_size(free_bytes(folder))} free on {mount_point(folder)})"
                if is_disk_full(exc)
                else (exc.strerror or str(exc))
            )
            return None, (
                f"Chat {self.id} is not saved: {reason}. It is kept in memory and saved again with the next "
                "message; free some space to keep it."
            )


def load_transcript(ws: Workspace, ref: str) -> Transcript:
    """A transcript by file path, exact id or unique id prefix; the user's text never becomes a glob pattern."""
    path = Path(ref)
    if path.is_file():
        return parse_transcript(path)
    if ref.endswith(".jsonl") or "/" in ref or "\\" in ref:
        raise FtbenchError(f"Chat file {ref} does not exist.", "List saved chats with `ftbench chat --list`.")
    if not CHAT_ID_RE.fullmatch(ref):
        raise FtbenchError(f"{ref!r} is not a chat id or a chat file.", "List saved chats with `ftbench chat --list`.")
    path = ws.chats_dir / f"{ref}.jsonl"
    if path.is_file():
        return parse_transcript(path)
    # A unique prefix of a saved id, compared as plain strings (never a glob pattern).
    ids = sorted(p.stem for p in ws.chats_dir.iterdir() if p.suffix == ".jsonl") if ws.chats_dir.is_dir() else []
    matches = [chat_id for chat_id in ids if chat_id.startswith(ref)]
    if len(matches) != 1:
        found = "no chat" if not matches else f"{len(matches)} chats"
        raise FtbenchError(
            f"'{ref}' matches {found} in {ws.chats_dir}.", "List saved chats with `ftbench chat --list`."
        )
    return parse_transcript(ws.chats_dir / f"{matches[0]}.jsonl")


def parse_transcript(path: Path) -> Transcript:
    """A transcript file, or one sentence naming the file and the line that is not what a transcript holds."""
    objs = []
    for n, line in enumerate(read_text(path, "transcripts").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            objs.append((n, json.loads(line)))
        except ValueError as exc:
            raise FtbenchError(
                f"{path} line {n} is not a JSON-lines chat transcript line ({exc}).", "Restore it or delete it."
            ) from exc
    head = objs[0][1] if objs else None
    if not isinstance(head, dict) or head.get("type") != "chat":
        raise FtbenchError(f"{path} does not start with a chat header line.", "It is not an ftbench transcript.")
    if not isinstance(head.get("variants", []), list):
        raise FtbenchError(f"{path}: the header's variants must be a list of columns.", "Restore it or delete it.")
    try:
        variants = [VariantSpec.from_dict(v) for v in head.get("variants", [])]
        settings = GenSettings.from_dict(head.get("settings"))
    except FtbenchError as exc:
        raise FtbenchError(f"{path}: {exc.message}", exc.hint) from None
    except (TypeError, ValueError) as exc:
        raise FtbenchError(f"{path}: the header's settings are not a mapping ({exc}).", "Restore it.") from None
    for spec in variants:
        for option in LIVE_ONLY_OPTIONS:
            spec.options.pop(option, None)
    t = Transcript(
        id=check_chat_id(head.get("id"), str(path)),
        variants=variants,
        settings=settings,
        overrides=head.get("overrides") or {},
        title=head.get("title", ""),
        created=head.get("created", 0.0),
    )
    for n, obj in objs[1:]:
        ok = isinstance(obj, dict) and obj.get("type") == "message" and isinstance(obj.get("variant"), str)
        if not ok or obj.get("role") not in ("user", "assistant", "system"):
            raise FtbenchError(
                f"{path} line {n} is not a chat message (type, variant, role and content).", "Fix or remove that line."
            )
        entry = {k: v for k, v in obj.items() if k not in ("type", "variant")}
        t.history.setdefault(obj["variant"], []).append(entry)
    return t


def list_transcripts(ws: Workspace, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Saved chats, newest first: id, title, columns, number of turns. A file that is not a readable
    transcript is left out, and why goes into `problems` (one sentence naming it)."""
    out = []
    for path in sorted(ws.chats_dir.glob("*.jsonl"), reverse=True):
        try:
            t = parse_transcript(path)
        except FtbenchError as exc:
            if problems is not None:
                problems.append(exc.message)
            continue
        turns = max((sum(1 for m in msgs if m["role"] == "user") for msgs in t.history.values()), default=0)
        out.append(
            {"id": t.id, "title": t.title, "columns": [v.name for v in t.variants], "turns": turns, "path": str(path)}
        )
    return out
