"""ftbench.tui.widgets."""
