"""Benchmarks of the real daemon: ``python bench/run.py`` (or ``make bench``)."""
