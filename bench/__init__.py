"""The stepboard benchmark suite (``python -m bench.run --help``)."""
