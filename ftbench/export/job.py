"""The export job target (`kind="export"`): runs the pipeline inside a detached job in exports/<id>/.

Being a job means an export survives SSH drops and the TUI shows its phases from events.jsonl; the
result card (files, sizes, verification numbers, run commands) lands in status.json's `result`.
"""

from __future__ import annotations

from typing import Any


def run(ctx: Any) -> None:
    """params: source (run id / folder), quants (list or "q4_k_m,q8_0"), adapter_only, keep, verify, base."""
    from ftbench.export.pipeline import VerificationFailed, resolve_source, run_export

    p = ctx.params
    quants = p.get("quants") or ctx.workspace.config.defaults.export_quants
    source = resolve_source(ctx.workspace, str(p["source"]), p.get("base"))
    ctx.log(f"Exporting {source.name} to {', '.join(q.upper() for q in (quants if isinstance(quants, list) else quants.split(',')))}")
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
        )
    except VerificationFailed as exc:
        ctx.set_result(**exc.result)  # the card still shows what was written and the failing numbers
        raise
    if p.get("eval") and not p.get("adapter_only"):
        from ftbench.evaluate.retention import score_export

        result["retention"] = score_export(ctx, source, result, p["eval"], p.get("eval_label_pattern"), keep_merged=bool(p.get("keep")))
    ctx.set_result(**result)
