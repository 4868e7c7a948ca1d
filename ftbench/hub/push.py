"""`ftbench push`: what to upload from a run, export or folder, and the push job target (`kind="push"`).

`plan_push` is pure file reading (no huggingface_hub), so `--dry-run` and the checks before a job exists
run in the CLI's process; the job makes the same plan from the pinned folder and uploads it in one commit
(`create_repo(exist_ok=True)` then `create_commit`), with the generated README.md model card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ftbench.core.artifacts import GGUFFile, Run, Weights, resolve
from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout
from ftbench.hub.card import CardFacts, read_json, render_model_card
from ftbench.hub.pull import repo_id_of

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext
    from ftbench.core.workspace import Workspace

WHATS = ("adapter", "merged", "gguf")
CARD = "README.md"
MERGED = "merged"  # an export's kept merged folder (`ftbench export --keep`)


@dataclass
class PushPlan:
    what: str
    pinned: Path  # what `ref` resolved to (a job folder, weights folder or GGUF file): the job pushes this
    files: list[tuple[Path, str]]  # (local file, path in the repo)
    facts: CardFacts

    @property
    def card(self) -> str:
        return render_model_card(self.facts)

    def listing(self) -> list[tuple[str, int]]:
        """(path in repo, bytes) of every file the commit will hold, README.md included."""
        rows = [(name, path.stat().st_size) for path, name in self.files]
        return sorted(rows + [(CARD, len(self.card.encode()))])


def plan_push(
    ws: Workspace, ref: str, what: str | None = None, base_model: str | None = None, label: str | None = None
) -> PushPlan:
    """The files and card for pushing `ref` (a run, export, adapter/model folder or GGUF file) as `what`.

    `label` is how the card names the source (the user's reference, when `ref` is the pinned path)."""
    if what is not None and what not in WHATS:
        raise FtbenchError(f"--what {what!r} is not one of {', '.join(WHATS)}.", "Use --what adapter|merged|gguf.")
    art = resolve(ws, ref, want=("run", "export", "adapter", "model", "gguf"))
    run_dir, export_dir, folder, gguf = None, None, None, []
    if isinstance(art, Run) and art.kind == "export":
        export_dir, run_dir = art.path, _run_of_export(art.path)
    elif isinstance(art, Run):
        run_dir = art.path
    elif isinstance(art, Weights):
        folder, run_dir = art.path, art.run.path if art.run else None
        what = what or ("adapter" if art.kind == "adapter" else "merged")
    elif isinstance(art, GGUFFile):
        gguf, export_dir = [art.path], art.path.parent if JobLayout(art.path.parent).is_job() else None
        what = what or "gguf"
    what = what or _default_what(run_dir, export_dir)
    files = _files_for(ws, what, ref, folder, gguf, run_dir, export_dir)
    facts = _facts(ws, what, label or ref, files[0][0], run_dir, export_dir if what == "gguf" else None, base_model)
    return PushPlan(what=what, pinned=art.path, files=files, facts=facts)


def _default_what(run_dir: Path | None, export_dir: Path | None) -> str:
    if export_dir is not None:
        return "gguf"
    if run_dir is not None and JobLayout(run_dir).adapter.is_dir():
        return "adapter"
    return "merged"


def _files_for(
    ws: Workspace,
    what: str,
    ref: str,
    folder: Path | None,
    gguf: list[Path],
    run_dir: Path | None,
    export_dir: Path | None,
) -> list[tuple[Path, str]]:
    if what == "gguf":
        if not gguf:
            gguf = sorted(export_dir.glob("*.gguf")) if export_dir else _newest_export_ggufs(ws, run_dir)
        if not gguf:
            raise FtbenchError(f"{ref} has no GGUF file to push.", f"Export it first with `ftbench export {ref}`.")
        return [(path, path.name) for path in gguf]
    if folder is None and what == "adapter" and run_dir is not None and JobLayout(run_dir).adapter.is_dir():
        folder = JobLayout(run_dir).adapter
    if folder is None and what == "merged":
        candidates = [export_dir / MERGED] if export_dir else []
        candidates += [JobLayout(run_dir).model] if run_dir else []
        folder = next((c for c in candidates if c.is_dir()), None)
        if folder is None:
            raise FtbenchError(
                f"{ref} has no merged model to push.",
                "A LoRA run's merged model is kept by `ftbench export RUN --keep`; push that export with --what merged.",
            )
    if folder is None:
        raise FtbenchError(
            f"{ref} has no adapter to push.", "Pass a LoRA, QLoRA or prompt-tuning run, or --what merged."
        )
    if what == "adapter" and not (folder / "adapter_config.json").is_file():
        raise FtbenchError(f"{folder} is not a PEFT adapter (no adapter_config.json).", "Use --what merged for it.")
    return [
        (path, path.relative_to(folder).as_posix())
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != CARD and ".cache" not in path.relative_to(folder).parts
    ]


def _run_of_export(export_dir: Path) -> Path | None:
    """The training run an export came from: the job folder holding its pinned source adapter/ or model/."""
    spec = read_json(JobLayout(export_dir).spec) or {}
    source = Path(str((spec.get("params") or {}).get("source") or ""))
    return source.parent if source.name and JobLayout(source.parent).is_job() else None


def _newest_export_ggufs(ws: Workspace, run_dir: Path | None) -> list[Path]:
    if run_dir is None:
        return []
    exports = sorted(p for p in ws.jobs_parent("export").glob("*") if _run_of_export(p) == run_dir)
    for export_dir in reversed(exports):
        found = sorted(export_dir.glob("*.gguf"))
        if found:
            return found
    return []


def _facts(
    ws: Workspace,
    what: str,
    ref: str,
    first_file: Path,
    run_dir: Path | None,
    export_dir: Path | None,
    base_model: str | None,
) -> CardFacts:
    facts = CardFacts(what=what, source=ref)
    if run_dir is not None:
        layout = JobLayout(run_dir)
        facts.recipe = yaml.safe_load(layout.recipe.read_text(encoding="utf-8")) if layout.recipe.is_file() else None
        facts.metrics = read_json(layout.metrics) or {}
    if export_dir is not None:
        facts.export = (read_json(JobLayout(export_dir).status) or {}).get("result")
    recipe = facts.recipe or {}
    model = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
    config = read_json(first_file.parent / "adapter_config.json") or {}
    facts.base_name = model.get("path") or config.get("base_model_name_or_path")
    facts.base_model = base_model or _hub_id(facts.base_name, run_dir)
    data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    facts.dataset_id = _hub_dataset_id(data.get("train"))
    facts.evals = _newest_eval(ws, run_dir)
    return facts


def _hub_id(name: str | None, run_dir: Path | None) -> str | None:
    """The Hub repo id of a base model named in a recipe: the folder's origin if it was pulled, else the name itself."""
    if not name:
        return None
    for folder in (Path(name).expanduser(), *((run_dir / name,) if run_dir else ())):
        if folder.is_dir():
            return repo_id_of(folder)
    return name if name.count("/") == 1 and not name.startswith((".", "/", "~")) else None


def _hub_dataset_id(train: Any) -> str | None:
    """A Hub dataset id for the metadata: only a file inside the HF cache's datasets--owner--name folder."""
    parts = Path(str(train or "")).parts
    for part in parts:
        if part.startswith("datasets--"):
            return part[len("datasets--") :].replace("--", "/")
    return None


def _newest_eval(ws: Workspace, run_dir: Path | None) -> dict[str, Any] | None:
    """metrics.json of the newest eval job that scored this run (its variants name files inside the run)."""
    if run_dir is None:
        return None
    for job in sorted(ws.jobs_parent("eval").glob("*"), reverse=True):
        spec = read_json(JobLayout(job).spec) or {}
        if spec.get("kind") != "eval" or str(run_dir) not in json.dumps(spec.get("params")):
            continue
        summary = read_json(job / "metrics.json")
        if summary:
            return summary
    return None


def run(ctx: JobContext) -> None:
    """params: source (the pinned path), label (the user's reference), what, repo_id, private, base_model."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from ftbench.hub.errors import explain_hub_error

    p = ctx.params
    plan = plan_push(ctx.workspace, p["source"], p["what"], p.get("base_model"), p.get("label"))
    total = sum(size for _, size in plan.listing())
    ctx.log(f"Pushing {len(plan.files) + 1} files ({total} bytes) of {p.get('label')} to {p['repo_id']}")
    ctx.progress("upload", 0, total)
    api = HfApi()
    ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for path, name in plan.files]
    ops.append(CommitOperationAdd(path_in_repo=CARD, path_or_fileobj=plan.card.encode()))
    try:
        url = api.create_repo(p["repo_id"], private=bool(p.get("private")), exist_ok=True)
        info = api.create_commit(
            url.repo_id, operations=ops, commit_message=f"Upload {plan.what} from ftbench ({p.get('label')})"
        )
    except Exception as exc:
        raise explain_hub_error(exc, p["repo_id"]) from exc
    ctx.progress("upload", total, total)
    ctx.set_result(repo_id=url.repo_id, url=str(url), commit=info.oid, what=plan.what, files=len(ops), bytes=total)
    ctx.log(f"Pushed to {url} (commit {info.oid})")
