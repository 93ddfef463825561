"""What a benchmark module hands back, and how ``python -m bench`` prints it.

A benchmark module has ``run(quick: bool) -> Report``: one ``Row`` per measured
scenario (its best run) and one ``Target`` per promise made about them. A
target only prints PASS or FAIL; benchmarks are not tests.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from bench._measure import Usage


@dataclass(frozen=True, slots=True)
class Row:
    """One scenario: the best of ``runs`` measured runs."""

    label: str
    usage: Usage
    runs: int


@dataclass(frozen=True, slots=True)
class Target:
    """``value`` must not exceed ``limit``; ``detail`` shows what it was computed from."""

    label: str
    value: float
    limit: float
    unit: str  # "x" for a ratio, "MB"
    detail: str = ""

    @property
    def verdict(self) -> str:
        return "PASS" if self.value <= self.limit else "FAIL"


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    rows: list[Row]
    targets: list[Target]
    notes: list[str] = field(default_factory=list)


def progress(message: str) -> None:
    """A line on stderr while a long benchmark runs (the report itself goes to stdout)."""
    print(f"  … {message}", file=sys.stderr, flush=True)  # noqa: T201


def render(report: Report) -> str:
    """The report as plain-text tables; `_measure` explains each column."""
    lines = [f"== {report.title} ==", ""]
    lines.append(
        f"{'scenario':<44}{'runs':>5}{'CPU s':>9}{'(main)':>9}{'wall s':>8}"
        f"{'main MB':>9}{'tree MB':>9}{'PSS MB':>8}{'procs':>6}"
    )
    for row in report.rows:
        u = row.usage
        lines.append(
            f"{row.label:<44}{row.runs:>5}{u.cpu_s:>9.2f}{u.main_cpu_s:>9.2f}{u.wall_s:>8.2f}"
            f"{u.main_peak_mb:>9.0f}{u.tree_peak_mb:>9.0f}{u.pss_peak_mb:>8.0f}{u.processes:>6}"
        )
    lines += ["", f"{'target':<44}{'value':>10}{'limit':>10}  {'':<6}from"]
    for target in report.targets:
        value = _amount(target.value, target.unit)
        limit = _amount(target.limit, target.unit)
        lines.append(
            f"{target.label:<44}{value:>10}{limit:>10}  {target.verdict:<6}{target.detail}"
        )
    if report.notes:
        lines += ["", *(f"note: {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def _amount(value: float, unit: str) -> str:
    return f"{value:.2f}x" if unit == "x" else f"{value:.0f} {unit}"
