"""The example moderation service: run it with `python -m examples.moderation_service --help`."""
