"""What a benchmark module hands back, and how ``python -m bench`` prints it.

A benchmark module has ``run(quick: bool) -> Report``: one ``Row`` per measured
scenario (its best run, or its median run with the CPU's min and max: "best" in
the min-max column says which) and one ``Target`` per promise made about them. A
target only prints PASS or FAIL; benchmarks are not tests.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from bench._measure import Usage, median


@dataclass(frozen=True, slots=True)
class Row:
    """One scenario: the best of ``runs`` measured runs, or (``of_runs``) the median run
    with the least and most CPU any run took."""

    label: str
    usage: Usage
    runs: int
    cpu_range: tuple[float, float] | None = None  # min and max CPU s over the runs

    @classmethod
    def of_runs(cls, label: str, usages: list[Usage]) -> Row:
        """The median run of ``usages``, with their CPU's min and max."""
        cpu = [usage.cpu_s for usage in usages]
        return cls(label, median(usages), len(usages), (min(cpu), max(cpu)))


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
        f"{'scenario':<44}{'runs':>5}{'CPU s':>9}{'min-max':>16}{'(main)':>9}{'wall s':>8}"
        f"{'main MB':>9}{'tree MB':>9}{'PSS MB':>8}{'procs':>6}"
    )
    for row in report.rows:
        u = row.usage
        spread = f"{row.cpu_range[0]:.3f}-{row.cpu_range[1]:.3f}" if row.cpu_range else "best"
        lines.append(
            f"{row.label:<44}{row.runs:>5}{u.cpu_s:>9.3f}{spread:>16}{u.main_cpu_s:>9.2f}"
            f"{u.wall_s:>8.2f}{u.main_peak_mb:>9.0f}{u.tree_peak_mb:>9.0f}{u.pss_peak_mb:>8.0f}"
            f"{u.processes:>6}"
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
