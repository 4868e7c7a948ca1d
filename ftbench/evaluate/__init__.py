"""Scoring generated answers: metrics, eval sets, the `ftbench eval` job (imported by job processes, not the TUI)."""
