"""ftbench.train."""
