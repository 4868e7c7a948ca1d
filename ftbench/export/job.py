"""The export job target (`kind="export"`): runs the pipeline inside a detached job in exports/<id>/.

Being a job means an export survives SSH drops and the TUI shows its phases from events.jsonl; the
result card (files, sizes, verification numbers, run commands) lands in status.json's `result`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.layout import JobLayout

if TYPE_CHECKING:
    from ftbench.core.job_context import JobContext


def run(ctx: JobContext) -> None:
    """params: source (run id / folder), quants (list or "q4_k_m,q8_0"), adapter_only, keep, verify, base."""
    from ftbench.export.pipeline import VerificationFailed, resolve_source, run_export

    p = ctx.params
    quants = p.get("quants") or ctx.workspace.config.defaults.export_quants
    from ftbench.export.fallback import find_converter

    source = resolve_source(ctx.workspace, str(p["source"]), p.get("base"))
    pre_tokenizer = p.get("pre_tokenizer") or recipe_export_option(source, "pre_tokenizer")
    ctx.log(
        f"Exporting {source.name} to {', '.join(q.upper() for q in (quants if isinstance(quants, list) else quants.split(',')))}"
    )
    try:
        result = run_export(
            source,
            ctx.job_dir,
            quants=quants,
            adapter_only=bool(p.get("adapter_only")),
            keep_intermediates=bool(p.get("keep")) or bool(p.get("eval")),  # the eval step needs the merged model
            verify=bool(p.get("verify", True)),
            phase=lambda name, done, total: ctx.progress(name, done, total),
            log=ctx.log,
            pre_tokenizer=pre_tokenizer,
            fallback=find_converter(ctx.workspace),
        )
    except VerificationFailed as exc:
        ctx.set_result(**exc.result)  # the card still shows what was written and the failing numbers
        raise
    except BaseException:
        record_unfinished(ctx, source.name, keep=bool(p.get("keep")))
        raise
    if p.get("eval") and not p.get("adapter_only"):
        from ftbench.evaluate.retention import score_export

        result["retention"] = score_export(
            ctx, source, result, p["eval"], p.get("eval_label_pattern"), keep_merged=bool(p.get("keep"))
        )
    ctx.set_result(**result)


def record_unfinished(ctx: JobContext, source_name: str, keep: bool) -> None:
    """After a failed or stopped export: remove the merged model unless the user asked to keep it (the job's
    end removes `.partial` and intermediate files), and put the GGUF files that did finish on the card, marked
    as coming from an export that did not finish (not verified, no Modelfile)."""
    import shutil

    folder = Path(ctx.job_dir)
    if not keep:
        shutil.rmtree(folder / JobLayout.MERGED, ignore_errors=True)
    finished = sorted(folder.glob("*.gguf"))
    try:
        ctx.set_result(
            source=source_name,
            failed=True,
            files=[
                {"path": str(f), "type": f.stem.rsplit("-", 1)[-1], "bytes": f.stat().st_size, "role": "unfinished"}
                for f in finished
            ],
            note="The export did not finish; "
            + (
                "the files above were written before it ended and were not verified."
                if finished
                else "no file was finished."
            ),
        )
    except OSError:  # a full disk: the job's end still records the failure and its cause
        pass


def recipe_export_option(source: Any, key: str) -> Any:
    """`export.<key>` from the recipe.yaml of the run the source came from (its adapter/ or model/ parent), if any."""
    import yaml

    folder = source.adapter.path if source.adapter else source.model_dir
    recipe = JobLayout(Path(folder).parent).recipe if folder else None
    if recipe is None or not recipe.is_file():
        return None
    data = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    export = data.get("export") if isinstance(data, dict) else None
    return export.get(key) if isinstance(export, dict) else None
