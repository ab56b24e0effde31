"""Benchmarks run with ``python -m benchmarks.<name>`` from the project root."""
