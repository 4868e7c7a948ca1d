"""`ftbench chat`: one-shot answers, prompt sets side by side, or the chat screen, for base + adapters.

    ftbench chat MODEL [--adapter RUN_OR_PATH ...] --prompt TEXT [--json]
    ftbench chat MODEL --adapter RUN --prompts prompts.jsonl [--out compare.md]
    ftbench chat MODEL --adapter RUN --also EXPORT.gguf   (opens the chat screen)
    ftbench chat --resume CHAT_ID [--prompt TEXT]

Models load in a chat server subprocess (ftbench.chat.server), the same one the TUI uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ftbench.cli import print_json, subparser
from ftbench.core.errors import FtbenchError
from ftbench.core.safe_paths import inside, safe_name
from ftbench.core.text_files import read_text
from ftbench.core.workspace import Workspace

SETTING_FLAGS = ("system", "temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed")


def register(sub: Any) -> None:
    p = subparser(
        sub, "chat", "chat with a base model and its adapters side by side (one-shot, prompt set, or the chat screen)"
    )
    p.add_argument("model", nargs="?", help="HF model folder, .gguf file, name under models/, or run id")
    p.add_argument(
        "--adapter",
        "-a",
        action="append",
        default=[],
        metavar="RUN_OR_PATH",
        help="PEFT adapter folder or run id (repeatable); a LoRA .gguf on a GGUF model",
    )
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="MODEL",
        help="another model column: a merged model folder, a .gguf, a run id (repeatable)",
    )
    p.add_argument("--no-base", action="store_true", help="leave out the base model column")
    p.add_argument("--prompt", "-p", help="one prompt; every column answers it")
    p.add_argument(
        "--prompts", metavar="FILE", help='JSONL prompt set ({"prompt": ...} per line); greedy unless --temperature'
    )
    p.add_argument(
        "--out", metavar="PATH", help="with --prompts: write PATH.md and PATH.jsonl (default: chats/compare/<id>.*)"
    )
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--resume", metavar="CHAT", help="continue a saved chat (id or path)")
    p.add_argument("--save", action="store_true", help="save a one-shot exchange as a transcript")
    p.add_argument("--list", action="store_true", help="list saved chats")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="cuda, cpu or auto")
    p.add_argument("--load-in", choices=("4bit", "8bit"), default=None, help="load the HF base 4/8-bit (GPU)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the model folder")
    p.add_argument(
        "--allow-base-mismatch",
        action="store_true",
        help="load adapters even when their recorded base has another name",
    )
    p.set_defaults(func=handle)


def settings_from_args(args: argparse.Namespace, base: Any = None, greedy: bool = False) -> Any:
    from ftbench.chat.protocol import GenSettings

    values = base.to_dict() if base is not None else GenSettings().to_dict()
    if greedy:
        values["temperature"] = 0.0
    values.update({k: getattr(args, k) for k in SETTING_FLAGS if getattr(args, k) is not None})
    return GenSettings.from_dict(values)


def server_args(args: argparse.Namespace) -> list[str]:
    out = []
    if args.device:
        out += ["--device", args.device]
    if args.load_in:
        out += ["--quantize", args.load_in]
    if args.trust_remote_code:
        out.append("--trust-remote-code")
    return out


def handle(args: argparse.Namespace, ws: Workspace) -> int:
    from ftbench.chat.transcripts import Transcript, list_transcripts, load_transcript
    from ftbench.chat.variants import build_variants

    if args.list:
        problems: list[str] = []
        chats = list_transcripts(ws, problems)
        for problem in problems:  # on stderr, so --json stays clean
            print(f"note: skipped {problem}", file=sys.stderr)
        if args.json:
            print_json(chats)
        else:
            for c in chats:
                print(f"{c['id']}  {c['turns']} turns  {', '.join(c['columns'])}")
        return 0
    if args.resume:
        transcript = load_transcript(ws, args.resume)
        transcript.settings = settings_from_args(args, transcript.settings)
    elif args.model:
        variants = build_variants(
            ws,
            args.model,
            args.adapter,
            include_base=not args.no_base,
            extra_models=args.also,
            on_note=lambda note: print(f"note: {note}", file=sys.stderr),
        )
        transcript = Transcript.new(
            variants, settings_from_args(args, greedy=bool(args.prompts)), title=Path(args.model).name
        )
    else:
        raise FtbenchError(
            "`ftbench chat` needs a MODEL (or --resume CHAT, or --list).",
            "Example: ftbench chat smollm2-135m-instruct --prompt 'Hello'.",
        )
    if args.allow_base_mismatch:
        for v in transcript.variants:
            v.options["allow_base_mismatch"] = True
    if args.prompt is None and args.prompts is None:
        from ftbench.tui.chat_app import run_chat_app

        return run_chat_app(ws, transcript, server_args=server_args(args))
    if args.prompt is not None and args.prompts is not None:
        raise FtbenchError("--prompt and --prompts are exclusive.", "Give one prompt or a prompt file.")
    prompts = [{"prompt": args.prompt}] if args.prompt is not None else read_prompts(Path(args.prompts))
    from ftbench.chat.client import ChatClient

    client = ChatClient(log_path=ws.chats_dir / "server.log", server_args=server_args(args)).start()
    try:
        loaded = load_all(client, transcript, quiet=args.json)
        if args.prompts:
            return run_prompt_set(ws, client, transcript, loaded, prompts, args)
        return run_one_shot(ws, client, transcript, loaded, args)
    finally:
        client.close()


def read_prompts(path: Path) -> list[dict[str, Any]]:
    """A JSONL prompt set: each line a string or an object with prompt/text/instruction(+input) and optional system."""
    if not path.is_file():
        raise FtbenchError(
            f"Prompt file {path} does not exist.", 'Pass a JSONL file with one {"prompt": ...} per line.'
        )
    out = []
    for n, line in enumerate(read_text(path, "prompt files").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise FtbenchError(
                f"{path} line {n} is not JSON ({exc.msg}).", "Write one JSON object or string per line."
            ) from exc
        if isinstance(obj, str):
            obj = {"prompt": obj}
        text = obj.get("prompt") or obj.get("text") or obj.get("instruction") if isinstance(obj, dict) else None
        if not isinstance(text, str) or not text:
            raise FtbenchError(
                f"{path} line {n} has no 'prompt' (or 'text'/'instruction') string.", 'Add a "prompt" key.'
            )
        if obj.get("input"):
            text = f"{text}\n\n{obj['input']}"
        refs = obj.get("references", obj.get("reference", obj.get("output")))
        out.append(
            {
                "prompt": text,
                "system": obj.get("system"),
                "references": [refs] if isinstance(refs, str) else list(refs or []),
            }
        )
    if not out:
        raise FtbenchError(f"Prompt file {path} has no prompts.", "Add one JSON line per prompt.")
    return out


def load_all(client: Any, transcript: Any, quiet: bool = False) -> list[str]:
    """Load every column; a column that fails is reported and left out, the others go on."""
    loaded = []
    for spec in transcript.variants:
        try:
            info = client.load(spec)
        except FtbenchError as exc:
            print(
                f"error: column '{spec.name}': {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""),
                file=sys.stderr,
            )
            continue
        for w in info.get("warnings", []):
            print(f"warning: {spec.name}: {w}", file=sys.stderr)
        if not quiet:
            print(f"loaded {spec.name} ({spec.kind}) in {info.get('load_s', 0):.2f} s", file=sys.stderr)
        loaded.append(spec.name)
    if not loaded:
        raise FtbenchError("No column could be loaded.", "Fix the errors above and try again.")
    return loaded


def stats_line(done: dict[str, Any]) -> str:
    ttft = f"{done['ttft_s'] * 1000:.0f} ms" if done.get("ttft_s") is not None else "n/a"
    tps = f"{done['tok_s']:.1f} tok/s" if done.get("tok_s") is not None else "n/a"
    return f"{done.get('tokens', 0)} tokens, first token {ttft}, {tps}"


def run_one_shot(ws: Workspace, client: Any, transcript: Any, loaded: list[str], args: argparse.Namespace) -> int:
    results = []
    for name in loaded:
        transcript.add(name, "user", args.prompt)
        settings = transcript.settings_for(name)
        if not args.json:
            print(f"── {name} ──")
        on_token = None if args.json else (lambda t: (sys.stdout.write(t), sys.stdout.flush()))
        done = client.generate(name, transcript.messages(name), settings, on_token=on_token)
        transcript.add(
            name,
            "assistant",
            done["text"],
            ttft_s=done.get("ttft_s"),
            tok_s=done.get("tok_s"),
            tokens=done.get("tokens"),
        )
        results.append(
            {
                "variant": name,
                **{k: done.get(k) for k in ("text", "tokens", "ttft_s", "tok_s", "total_s", "stop_reason")},
            }
        )
        if not args.json:
            print(f"\n[{stats_line(done)}]\n")
    saved, problem = transcript.try_save(ws) if (args.save or args.resume) else (None, None)
    if problem:  # the reply is printed above; the saved chat on disk is still the one before it
        print(f"warning: {problem.replace(' and saved again with the next message', '')}", file=sys.stderr)
    if args.json:
        print_json({"chat": transcript.id if saved else None, "prompt": args.prompt, "results": results})
    elif saved:
        print(f"saved chat {transcript.id} ({saved})", file=sys.stderr)
    return 1 if problem else 0


def run_prompt_set(
    ws: Workspace,
    client: Any,
    transcript: Any,
    loaded: list[str],
    prompts: list[dict[str, Any]],
    args: argparse.Namespace,
) -> int:
    from ftbench.evaluate.metrics import ScoreOptions, score_example

    rows = []
    t0 = time.perf_counter()
    for i, item in enumerate(prompts, start=1):
        row: dict[str, Any] = {
            "index": i,
            "prompt": item["prompt"],
            "references": item.get("references", []),
            "answers": {},
        }
        for name in loaded:
            settings = transcript.settings_for(name)
            if item.get("system"):
                settings = settings.merged({"system": item["system"]})
            done = client.generate(name, [{"role": "user", "content": item["prompt"]}], settings)
            row["answers"][name] = {k: done.get(k) for k in ("text", "tokens", "ttft_s", "tok_s", "stop_reason")}
            if item.get("references"):  # scored as `ftbench eval` scores them
                row["answers"][name]["scores"] = score_example(
                    done.get("text") or "", item["references"], ScoreOptions()
                )
        rows.append(row)
        if not args.json:
            print(f"prompt {i}/{len(prompts)} done", file=sys.stderr)
    compare_dir = ws.chats_dir / "compare"
    out = Path(args.out) if args.out else inside(compare_dir, compare_dir / safe_name(transcript.id, fallback="chat"))
    stem = out.with_suffix("") if out.suffix in (".md", ".jsonl") else out
    md_path, jsonl_path = stem.parent / (stem.name + ".md"), stem.parent / (stem.name + ".jsonl")
    from ftbench.core.atomic import atomic_write_text

    atomic_write_text(md_path, compare_markdown(rows, loaded, transcript.settings))
    atomic_write_text(
        jsonl_path, "".join(json.dumps({"variants": loaded, **r}, ensure_ascii=False) + "\n" for r in rows)
    )
    scores = prompt_set_scores(rows, loaded)
    if args.json:
        print_json(
            {"markdown": str(md_path), "jsonl": str(jsonl_path), "variants": loaded, "rows": rows, "scores": scores}
        )
    else:
        print_compare_table(rows, loaded)
        for name, m in scores.items():
            print(
                f"{name}: "
                + ", ".join(
                    f"{k} {v:.1f}" for k, v in m.items() if k in ("exact_match", "token_f1", "rougeL", "bleu", "chrf")
                )
            )
        print(f"wrote {md_path} and {jsonl_path} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def prompt_set_scores(rows: list[dict[str, Any]], variants: list[str]) -> dict[str, dict[str, Any]]:
    """Per variant, the `ftbench eval` aggregate over the prompts that have references (none: empty)."""
    from ftbench.evaluate.metrics import ScoreOptions, aggregate

    scored = [r for r in rows if all("scores" in a for a in r["answers"].values())]
    if not scored:
        return {}
    return {
        name: aggregate(
            [
                {
                    "prediction": r["answers"][name]["text"] or "",
                    "references": r["references"],
                    "scores": r["answers"][name]["scores"],
                }
                for r in scored
            ],
            ScoreOptions(),
        )
        for name in variants
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def compare_markdown(rows: list[dict[str, Any]], variants: list[str], settings: Any) -> str:
    """The prompt set side by side: one row per prompt, one column per variant, stats under each answer."""
    mode = (
        "greedy"
        if settings.greedy
        else f"temperature {settings.temperature}, top_p {settings.top_p}, seed {settings.seed}"
    )
    lines = [
        "# Chat comparison",
        "",
        f"{len(rows)} prompts, {len(variants)} columns, {mode}, max {settings.max_new_tokens} new tokens.",
        "",
        "| # | prompt | " + " | ".join(variants) + " |",
        "|---|---|" + "---|" * len(variants),
    ]
    for r in rows:
        cells = []
        for v in variants:
            a = r["answers"][v]
            cells.append(_cell(a["text"]) + f"<br>*{a['tokens']} tok, {stats_line(a).split(', ', 1)[1]}*")
        lines.append(f"| {r['index']} | {_cell(r['prompt'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def print_compare_table(rows: list[dict[str, Any]], variants: list[str]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=True, expand=True)
    table.add_column("prompt", ratio=1)
    for v in variants:
        table.add_column(v, ratio=2)
    for r in rows:
        answers = [f"{escape(r['answers'][v]['text'])}\n[dim]{stats_line(r['answers'][v])}[/dim]" for v in variants]
        table.add_row(escape(r["prompt"]), *answers)
    Console().print(table)
