"""Screen 4, Models: model folders, the Hugging Face cache, GGUF files and adapters, with a VRAM estimate.

The detail panel shows what the catalog read from metadata (architecture, parameters from safetensors
headers, dtype, context, chat template, vocab, license, size) and, for a trainable model, the VRAM estimate
for full / LoRA / QLoRA at the sequence length and batch size typed above it, split into its parts and
checked against each GPU's free memory (from the app's latest NVML sample). Discovery is a `CatalogFeed` in
a thread worker: rows (name, kind, size) appear as folders are listed, architecture and parameters as each
model's metadata is read (the highlighted and visible rows first, unchanged ones straight from the workspace's
metadata cache); leaving the screen cancels it. Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from ftbench.catalog.models import ModelInfo
from ftbench.core.errors import FtbenchError
from ftbench.core.estimate import METHODS, VramEstimate, estimate_all, gpu_fits
from ftbench.core.humanize import human_count, human_size
from ftbench.core.vram_calibration import load_calibration
from ftbench.core.workspace import Workspace
from ftbench.tui.catalog_feed import (
    CatalogDetails,
    CatalogDone,
    CatalogFeed,
    CatalogRows,
    FeedScreen,
    found_subtitle,
    visible_keys,
)
from ftbench.tui.services import services
from ftbench.tui.widgets.app_header import AppHeader

GIB = 1024**3
READING = "…"  # a detail not read yet


def info_table(m: ModelInfo, complete: bool = True) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    rows = [
        ("kind", m.kind + (f" ({m.peft_type})" if m.peft_type else "")),
        ("architecture", m.architecture or "?"),
        ("parameters", f"{human_count(m.params)} ({m.params:,})" if m.params else "?"),
        ("dtype", m.dtype or "?"),
        ("context", f"{m.context_length:,}" if m.context_length else "?"),
        ("chat template", "yes" if m.chat_template else "no"),
        ("vocab", f"{m.vocab_size:,}" if m.vocab_size else "?"),
        ("license", m.license or "?"),
        ("size on disk", human_size(m.size_bytes)),
    ]
    if m.base_model:
        rows.insert(1, ("base model", m.base_model))
    if m.quantization and m.kind != "gguf":
        rows.append(("quantization", m.quantization))
    if not complete:
        rows = [rows[0], ("size on disk", human_size(m.size_bytes)), ("details", "reading metadata…")]
    for key, value in rows:
        grid.add_row(key, value)
    if m.error:
        grid.add_row("problem", Text(m.error, style="red"))
    return grid


def estimate_table(estimates: list[VramEstimate], gpu_report: Any, calibration: str = "") -> Group:
    """Parts by method in GiB, the total, for each GPU whether it fits in the free memory, and how far
    estimates were off on this box (core/vram_calibration.py) once a GPU run has measured it."""
    table = Table(box=None, padding=(0, 1), header_style="bold")
    table.add_column("part")
    for e in estimates:
        table.add_column(e.method, justify="right")
    for part in ("weights", "gradients", "optimizer", "activations", "overhead"):
        table.add_row(part, *(f"{e.parts()[part] / GIB:.2f}" for e in estimates))
    table.add_row(Text("total GiB", style="bold"), *(Text(f"{e.total / GIB:.2f}", style="bold") for e in estimates))
    table.add_row("trainable", *(human_count(e.trainable_params) for e in estimates))
    fits, reason = gpu_fits(estimates, gpu_report)
    lines: list[Any] = [table]
    if not fits:
        lines.append(Text(f"GPU fit: n/a ({reason})", style="dim"))
    for f in fits:
        line = Text(f"GPU {f.index} {f.name}: {human_size(f.free)} free  ")
        for method in METHODS:
            ok = f.fits.get(method)
            line.append(f"{method} ", style="bold")
            line.append(
                "✔ " if ok else "✘ " if ok is False else "? ", style="green" if ok else "red" if ok is False else "dim"
            )
        lines.append(line)
    if calibration:
        lines.append(Text(calibration, style="dim"))
    return Group(*lines)


class ModelsScreen(FeedScreen, Screen[None]):
    """Models list on the left; details and the VRAM estimate of the highlighted one on the right."""

    TITLE = "Models"
    DEFAULT_CSS = """
    ModelsScreen #md-list { width: 68; height: 1fr; border: round $panel; }
    ModelsScreen #md-list:focus { border: round $accent; }
    ModelsScreen #md-right { width: 1fr; }
    ModelsScreen #md-detail { height: auto; border: round $panel; padding: 0 1; }
    ModelsScreen #md-params { height: 3; }
    ModelsScreen #md-params Label { padding: 1 1 0 1; }
    ModelsScreen #md-params Input { width: 14; }
    ModelsScreen #md-estimate-box { height: 1fr; border: round $panel; padding: 0 1; }
    """
    BINDINGS = [
        Binding("r", "rescan", "Rescan", id="models_rescan"),
        Binding("e", "focus_estimate", "Seq len / batch", id="models_estimate"),
        Binding("escape", "focus_list", "List", show=False, id="models_list"),
        Binding("v", "serve", "Serve (OpenAI API)", id="models_serve"),
        Binding("p", "pull", "Pull from the Hub", id="models_pull"),
    ]

    def __init__(self, ws: Workspace, *, hf_cache: bool | None = None) -> None:
        super().__init__()
        self.ws = ws
        self.hf_cache = hf_cache
        self.models: list[ModelInfo] = []
        self.keys: list[str] = []  # row keys, parallel to `models`
        self.complete: set[str] = set()  # keys whose details are in
        self.current: ModelInfo | None = None
        self.current_key: str | None = None
        self.estimates: list[VramEstimate] = []
        self.feed: CatalogFeed | None = None
        self.listing_done = False  # every row listed and detailed (set on the event loop, for tests and the title)
        self._gpu_fallback: Any = None
        self.calibration = load_calibration(ws.root)  # what GPU runs here measured against their estimates

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Horizontal():
            table: DataTable[str | Text] = DataTable(id="md-list", cursor_type="row", zebra_stripes=True)
            table.border_title = "models"
            for key, label, width in (
                ("name", "name", 20),
                ("kind", "kind", 7),
                ("arch", "architecture", 14),
                ("params", "params", 7),
                ("size", "size", 8),
            ):
                table.add_column(label, key=key, width=width)
            yield table
            with Vertical(id="md-right"):
                detail = Static(Text("Scanning model folders…", style="dim"), id="md-detail")
                detail.border_title = "model"
                yield detail
                with Horizontal(id="md-params"):
                    yield Label("seq len")
                    yield Input(value="1024", id="md-seq", type="integer")
                    yield Label("batch")
                    yield Input(value="4", id="md-batch", type="integer")
                with VerticalScroll(id="md-estimate-box") as box:
                    box.border_title = "VRAM estimate (GiB)"
                    yield Static("", id="md-estimate")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#md-list", DataTable).focus()

    def discover(self) -> None:
        from ftbench.catalog.model_listing import ModelCatalog

        self.models, self.keys, self.complete = [], [], set()
        self.current = self.current_key = None
        self.listing_done = False
        table = self.query_one("#md-list", DataTable)
        table.clear()
        table.border_subtitle = "scanning…"
        self.start_feed(ModelCatalog(self.ws, hf_cache=self.hf_cache))

    def _cells(self, m: ModelInfo, complete: bool) -> tuple[Text, str, Text, str, str]:
        name = Text(m.name, no_wrap=True, overflow="ellipsis", style="red" if m.error else "")
        arch = Text((m.architecture or "?") if complete else READING, no_wrap=True, overflow="ellipsis")
        return name, m.kind, arch, human_count(m.params) if complete else READING, human_size(m.size_bytes)

    def on_catalog_rows(self, message: CatalogRows) -> None:
        if message.feed is not self.feed:
            return
        table = self.query_one("#md-list", DataTable)
        for entry in message.entries:
            self.models.append(entry.info)
            self.keys.append(entry.key)
            if entry.complete:
                self.complete.add(entry.key)
            table.add_row(*self._cells(entry.info, entry.complete), key=entry.key)
        table.border_subtitle = f"{len(self.models)} found, scanning…"
        if self.current is None and self.models:
            self.show_model(self.models[0], self.keys[0])
        self._prefer_visible()

    def on_catalog_details(self, message: CatalogDetails) -> None:
        if message.feed is not self.feed:
            return
        table = self.query_one("#md-list", DataTable)
        index = {key: i for i, key in enumerate(self.keys)}
        for entry in message.entries:
            i = index[entry.key]
            self.models[i] = entry.info
            self.complete.add(entry.key)
            cells = self._cells(entry.info, True)
            for column, value in zip(("name", "kind", "arch", "params", "size"), cells, strict=True):
                table.update_cell(entry.key, column, value)
            if entry.key == self.current_key:
                self.show_model(entry.info, entry.key)

    def on_catalog_done(self, message: CatalogDone) -> None:
        if message.feed is not self.feed or message.cancelled:
            return
        self.listing_done = True
        table = self.query_one("#md-list", DataTable)
        table.border_subtitle = found_subtitle(len(self.models), message.notes)
        for note in message.notes[:3]:
            self.notify(note, severity="warning")
        if not self.models:
            roots = ", ".join(str(r) for r in self.ws.model_roots())
            self.query_one("#md-detail", Static).update(
                Text(f"No models under {roots}. Add folders to model_dirs in ftbench.toml.", style="yellow")
            )

    def _prefer_visible(self) -> None:
        """Ask the feed for the highlighted row's details first, then the rows on screen."""
        if self.feed is None or self.feed.done:
            return
        first = [self.current_key] if self.current_key else []
        self.feed.prefer(visible_keys(self.query_one("#md-list", DataTable), self.keys, first))

    @on(DataTable.RowHighlighted, "#md-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.models):
            self.show_model(self.models[event.cursor_row], self.keys[event.cursor_row])
            self._prefer_visible()

    def show_model(self, model: ModelInfo, key: str) -> None:
        self.current, self.current_key = model, key
        detail = self.query_one("#md-detail", Static)
        detail.border_title = model.name
        detail.update(info_table(model, key in self.complete))
        self.refresh_estimate()

    def _int(self, selector: str, default: int) -> int:
        raw = self.query_one(selector, Input).value.strip()
        return int(raw) if raw.isdigit() and int(raw) > 0 else default

    def refresh_estimate(self) -> None:
        out = self.query_one("#md-estimate", Static)
        model = self.current
        if model is None:
            return
        if self.current_key not in self.complete:
            self.estimates = []
            out.update(Text("The estimate follows once the model's metadata is read.", style="dim"))
            return
        if model.kind == "adapter":
            out.update(
                Text(f"An adapter: the estimate is its base model's ({model.base_model or 'unknown'}).", style="dim")
            )
            return
        seq_len, batch = self._int("#md-seq", 1024), self._int("#md-batch", 4)
        try:
            self.estimates = estimate_all(model, seq_len, batch, cuda_context=self.calibration.cuda_context)
        except FtbenchError as exc:
            self.estimates = []
            out.update(Text(exc.message, style="yellow"))
            return
        report = services(self.app).gpu_report()
        if report is None:
            if self._gpu_fallback is None:
                self._gpu_fallback = _sample_once()
            report = self._gpu_fallback
        out.update(estimate_table(self.estimates, report, self.calibration.describe()))

    @on(Input.Changed, "#md-seq")
    @on(Input.Changed, "#md-batch")
    def _params_changed(self, event: Input.Changed) -> None:
        self.refresh_estimate()

    def action_rescan(self) -> None:
        self.discover()

    def action_focus_estimate(self) -> None:
        self.query_one("#md-seq", Input).focus()

    def action_focus_list(self) -> None:
        self.query_one("#md-list", DataTable).focus()

    def action_serve(self) -> None:
        from ftbench.serve.launch import options_for_model
        from ftbench.tui.screens.serve import ServeScreen

        model = self.current
        if model is None:
            self.notify("No model selected.", severity="warning")
            return
        try:
            options = options_for_model(Path(model.path), model.kind, model.base_model)
        except FtbenchError as exc:
            self.notify(f"{exc.message} {exc.hint or ''}".strip(), severity="error", timeout=8)
            return
        self.app.push_screen(ServeScreen(self.ws, options))

    def action_pull(self) -> None:
        from ftbench.tui.screens.pull import PullScreen

        def started(job_id: str | None) -> None:
            if job_id:
                self.notify(f"Pulling in job {job_id}; it joins this list when done (r rescans).", timeout=8)

        self.app.push_screen(PullScreen(self.ws), started)


def _sample_once() -> Any:
    """The app has not sampled NVML yet (or runs without the sampler): sample once, tolerating absence."""
    try:
        from ftbench.core.gpu import sample_gpus
    except ImportError:  # pragma: no cover - gpu.py is part of core
        return None
    return sample_gpus()
