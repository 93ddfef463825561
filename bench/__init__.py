"""Benchmarks of feedsvc: `python -m bench [--quick] [NAME ...]`, or `make bench`."""
