"""Headless core: workspace, registry, jobs, events, GPU sampling. No Textual, no torch at import time."""
