"""``python -m bench [--quick] [NAME ...]``: run the benchmarks and print their figures.

Each NAME is a module of this package with ``run(quick: bool) -> Report``; with
none, all of them run. The exit status is 0 whether targets pass or fail
(benchmarks are not tests); it is 1 only when a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bench._measure import BenchError
from bench._report import Report, render

BENCHMARKS = (
    "ingest",
    "publish",
    "serve",
    "newsletter",
    "poll",
    "service",
    "stories",
    "fulltext",
    "admin",
    "search",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and one run each: a smoke check"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (choose from {', '.join(BENCHMARKS)})")
    broken = 0
    for name in args.names or BENCHMARKS:
        try:
            report = _run(name, args.quick)
        except BenchError as error:
            broken += 1
            sys.stdout.write(f"== {name}: ERROR ==\n{error}\n\n")
            continue
        sys.stdout.write(render(report) + "\n")
        sys.stdout.flush()
    return 1 if broken else 0


def _run(name: str, quick: bool) -> Report:
    module = importlib.import_module(f"bench.{name}")
    report: Report = module.run(quick)
    return report


if __name__ == "__main__":
    sys.exit(main())
