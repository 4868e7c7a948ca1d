"""ftbench: a terminal workbench for local fine-tuning experiments."""

__version__ = "0.1.0"
