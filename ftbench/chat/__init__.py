"""ftbench.chat."""
