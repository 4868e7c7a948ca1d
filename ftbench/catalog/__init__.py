"""ftbench.catalog."""
