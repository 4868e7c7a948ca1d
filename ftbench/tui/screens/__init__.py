"""ftbench.tui.screens."""
