"""ftbench.export."""
