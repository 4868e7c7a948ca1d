"""The Hugging Face Hub: `ftbench pull` and `ftbench push` through huggingface_hub, each as a detached job.

`launch.py` is the light entry (checks a repo id and starts the job; the TUI's Models screen uses it),
`pull.py` and `push.py` are the job targets, `card.py` writes the pushed model card, `errors.py` turns the
client's exceptions into one sentence with the fix.
"""
