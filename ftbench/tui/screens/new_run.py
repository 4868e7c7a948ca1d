"""Screen 5, New run: pick a recipe or a past run, edit its YAML with live validation, launch it.

The editor is validated with `ftbench.core.recipe` (the same schema `ftbench train` uses) a moment after
each edit, so a misspelt key is named before a GPU hour is spent. $EDITOR works through `App.suspend`.
Launching starts the `train` job exactly as the CLI does (recipe frozen into the run folder) and opens
its monitor. The Models and Datasets screens prefill the model or data path through `prefill()`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from ftbench.core.errors import FtbenchError
from ftbench.core.layout import JobLayout
from ftbench.core.workspace import Workspace
from ftbench.tui.services import services
from ftbench.tui.widgets.app_header import AppHeader

if TYPE_CHECKING:
    from ftbench.core.jobs import Job
    from ftbench.core.recipe import Recipe

VALIDATE_DELAY_S = 0.3
STARTER = """task: sft
model: models/smollm2-135m-instruct
data: datasets/demo/sentiment-alpaca.jsonl
method: lora
"""


def recipe_sources(ws: Workspace) -> list[tuple[str, Path]]:
    """(label, file) for every recipe template (repo recipes/, workspace recipes/) and every past run's recipe."""
    out: list[tuple[str, Path]] = []
    for folder in (Path(__file__).resolve().parents[3] / "recipes", ws.root / "recipes"):
        if folder.is_dir():
            out.extend((f"recipe {p.stem}", p) for p in sorted(folder.glob("*.y*ml")))
    if ws.runs_dir.is_dir():
        runs = sorted((d for d in ws.runs_dir.iterdir() if JobLayout(d).recipe.is_file()), reverse=True)
        out.extend((f"run {d.name}", JobLayout(d).recipe) for d in runs[:50])
    return out


def check_recipe(text: str, source: str = "editor") -> tuple[Any | None, str, str]:
    """(recipe or None, message, hint): the parsed, validated recipe, or the first problem in words."""
    from ftbench.core.recipe import validate_recipe

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return (
            None,
            f"Not valid YAML{where}: {getattr(exc, 'problem', None) or exc}.",
            "Fix the indentation, colons or quotes.",
        )
    if not isinstance(raw, dict):
        return None, "A recipe is a mapping of keys.", "Start with `task: sft`."
    try:
        recipe = validate_recipe(raw, source)
    except FtbenchError as exc:
        return None, exc.message, exc.hint or ""
    return recipe, "", ""


def set_key(text: str, dotted: str, value: str) -> str:
    """The YAML text with `dotted` (model.path, data.train) set; other keys and their order are kept."""
    raw = yaml.safe_load(text) if text.strip() else {}
    if not isinstance(raw, dict):
        raw = {}
    section, _, key = dotted.partition(".")
    current = raw.get(section)
    if not isinstance(current, dict):
        current = {}
    current[key] = value
    raw[section] = current
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


class NewRunScreen(Screen[None]):
    TITLE = "New run"
    BINDINGS = [
        Binding("f5", "launch", "Launch", id="newrun_launch"),
        Binding("f4", "external_editor", "$EDITOR", id="newrun_editor"),
        Binding("f2", "focus_sources", "Templates", id="newrun_templates"),
    ]

    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self.sources = recipe_sources(ws)
        self.source_path: Path | None = None
        self.recipe: Recipe | None = None
        self.problem: tuple[str, str] = ("", "")
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Horizontal(id="newrun-main"):
            with Vertical(id="newrun-editor"):
                try:
                    editor = TextArea.code_editor(STARTER, language="yaml", id="newrun-yaml")
                except Exception:  # noqa: BLE001 - no YAML grammar installed: plain editor
                    editor = TextArea.code_editor(STARTER, id="newrun-yaml")
                editor.border_title = JobLayout.RECIPE
                yield editor
            with Vertical(id="newrun-side"):
                yield Static("", id="newrun-status")
                options = OptionList(
                    *(Option(label, id=str(i)) for i, (label, _) in enumerate(self.sources)), id="newrun-sources"
                )
                options.border_title = "start from (enter)"
                yield options
        yield Footer()

    def on_mount(self) -> None:
        self.validate_now()

    # ------------------------------------------------------------------ editing and validation
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_DELAY_S, self.validate_now)

    def validate_now(self) -> None:
        text = self.query_one("#newrun-yaml", TextArea).text
        self.recipe, message, hint = check_recipe(text)
        self.problem = (message, hint)
        status = self.query_one("#newrun-status", Static)
        if self.recipe is not None:
            r = self.recipe
            status.update(
                Text.assemble(
                    ("✓ valid  ", "bold green"),
                    f"{r.task} · {r.method.name} · {Path(r.model.path).name} · {Path(r.data.train).name}",
                )
            )
        else:
            status.update(
                Text.assemble(("✗ ", "bold red"), (message, "red"), ("\nhint: " + hint if hint else "", "dim"))
            )

    def load_text(self, text: str, source: Path | None = None) -> None:
        self.source_path = source
        self.query_one("#newrun-yaml", TextArea).load_text(text)
        self.validate_now()

    def prefill(self, model: str | None = None, dataset: str | None = None) -> None:
        """Called by the Models/Datasets screens: put the selected model or data file into the recipe."""
        text = self.query_one("#newrun-yaml", TextArea).text
        try:
            if model:
                text = set_key(text, "model.path", str(model))
            if dataset:
                text = set_key(text, "data.train", str(dataset))
        except yaml.YAMLError:
            self.notify("The recipe is not valid YAML; fix it before filling in a model or dataset.", severity="error")
            return
        self.load_text(text, self.source_path)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        label, path = self.sources[int(event.option.id or 0)]
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot read {path}: {exc.strerror}.", severity="error")
            return
        self.load_text(text, path)
        self.query_one("#newrun-yaml", TextArea).focus()

    def action_focus_sources(self) -> None:
        self.query_one("#newrun-sources", OptionList).focus()

    # ------------------------------------------------------------------ $EDITOR
    def action_external_editor(self) -> None:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        area = self.query_one("#newrun-yaml", TextArea)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as handle:
            handle.write(area.text)
            path = Path(handle.name)
        try:
            with self.app.suspend():
                subprocess.run([*shlex.split(editor), str(path)], check=False)
            self.load_text(path.read_text(encoding="utf-8"), self.source_path)
        except Exception as exc:  # noqa: BLE001 - e.g. no terminal to suspend to (headless)
            self.notify(f"Could not run {editor}: {exc}", severity="error")
        finally:
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ launch
    def action_launch(self) -> None:
        self.validate_now()
        if self.recipe is None:
            self.notify(f"Not launched: {self.problem[0]}", severity="error", timeout=8)
            return
        try:
            job = launch_recipe(self.ws, self.recipe, self.source_path)
        except FtbenchError as exc:
            self.notify(f"{exc.message} {exc.hint or ''}".strip(), severity="error", timeout=8)
            return
        self.notify(f"Started {job.id}.")
        opener = services(self.app).open_monitor
        if opener is not None:
            opener(job.dir)


def launch_recipe(ws: Workspace, recipe: Recipe, source: Path | None = None) -> Job:
    """Start the training job as `ftbench train` does: absolute paths, recipe frozen into the run folder."""
    from ftbench.core.atomic import atomic_write_text
    from ftbench.core.gpu_queue import default_sampler, request_for_recipe
    from ftbench.core.jobs import start_job
    from ftbench.core.recipe import check_machine, resolve_recipe_paths
    from ftbench.core.registry import Registry
    from ftbench.core.remote_code import launch_env

    recipe = resolve_recipe_paths(recipe, ws, source.parent if source else None)
    env = launch_env(recipe, False, str(source or "the recipe"))  # the TUI never turns remote code on
    if Path(recipe.model.path).is_absolute() and not Path(recipe.model.path).exists():  # else a hub id
        raise FtbenchError(
            f"model.path {recipe.model.path} does not exist.", "Pick a model on the Models screen (4) or fix the path."
        )
    if not Path(recipe.data.train).exists():
        raise FtbenchError(
            f"data.train {recipe.data.train} does not exist.",
            "Pick a dataset on the Datasets screen (3) or fix the path.",
        )
    name = recipe.name or (source.stem if source else "run")
    meta = {
        "task": recipe.task,
        "method": recipe.method.name,
        "model": Path(recipe.model.path).name,
        "dataset": Path(recipe.data.train).name,
    }
    params: dict[str, Any] = {"recipe": recipe.to_dict()}
    check_machine(recipe, default_sampler()(), str(source or "the recipe"))
    gpu_request = request_for_recipe(recipe)
    if gpu_request:
        params["gpu_request"] = gpu_request
    job = start_job(ws, "train", name, params=params, meta=meta, env=env, on_launch=Registry(ws).sync_job)
    atomic_write_text(job.layout.recipe, recipe.to_yaml())
    return job
