"""Measurements. Each script runs on its own (``python -m bench.<name>``), compares against
a baseline measured in the same run (these machines are noisy), and prints the figures
that go into ``docs/benchmarks.md``."""
