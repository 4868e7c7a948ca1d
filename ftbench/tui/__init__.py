"""ftbench.tui."""
