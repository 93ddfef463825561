"""Durations ("90s", "15m", "2h", "1d") and sizes ("512KB", "10MB"), as config.yaml writes them."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_BYTES = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(value: object) -> timedelta:
    """Read "90s", "15m", "2h", "1d" (or a bare number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(
            f"invalid duration {value!r}: write a number and a unit, e.g. 90s, 15m, 2h, 1d"
        )
    amount, unit = match.groups()
    return timedelta(seconds=float(amount) * _SECONDS[unit.lower()])


def parse_size(value: object) -> int:
    """Read "512KB", "10MB" (decimal) or "1MiB" (binary), or a bare number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"invalid size {value!r}: write a number and a unit, e.g. 512KB, 10MB")
    amount, unit = match.groups()
    return int(float(amount) * _BYTES[(unit or "b").lower()])


def format_duration(delta: timedelta) -> str:
    """The shortest exact text for a duration: 900 s -> "15m"."""
    seconds = delta.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        size = _SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def format_size(size: int) -> str:
    for unit in ("GB", "MB", "KB"):
        scale = _BYTES[unit.lower()]
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"
