"""Ingest: fetch a source, parse its body, identify its entries."""
