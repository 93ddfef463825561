"""A table for thousands of rows: rich's look, a small fraction of its cost.

``rich.table.Table`` measures, wraps and renders every cell as a renderable of
its own: about 1 ms a row, so ``feedsvc poll``'s summary of 2,000 sources cost
more CPU than polling them. :class:`PlainTable` lays out plain text in
columns as wide as their widest cell, one line per row (a long cell makes a
long line; print it on a console with ``soft_wrap``, as the CLI's are, and the
terminal wraps it), with rich's default box and styles.

Cells are plain text, never console markup; control characters (an escape
sequence in a server's reason phrase) are shown as spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from rich.style import Style

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HEADER = Style(bold=True)


class PlainTable:
    """``PlainTable("a", "b").add_row("1", "2", style="red")``, then ``console.print(table)``."""

    def __init__(self, *headers: str) -> None:
        self._headers = [_plain(header) for header in headers]
        self._rows: list[tuple[list[str], Style | None]] = []

    def add_row(self, *cells: str, style: str | None = None) -> None:
        self._rows.append(([_plain(cell) for cell in cells], Style.parse(style) if style else None))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        widths = [cell_len(header) for header in self._headers]
        for cells, _ in self._rows:
            widths = [max(width, cell_len(cell)) for width, cell in zip(widths, cells, strict=True)]
        yield Segment(_rule("┏", "━", "┳", "┓", widths) + "\n")
        yield from _line(self._headers, widths, "┃", _HEADER)
        yield Segment(_rule("┡", "━", "╇", "┩", widths) + "\n")
        for cells, style in self._rows:
            yield from _line(cells, widths, "│", style)
        yield Segment(_rule("└", "─", "┴", "┘", widths) + "\n")


def _plain(text: str) -> str:
    return _CONTROL.sub(" ", str(text))


def _rule(left: str, fill: str, cross: str, right: str, widths: list[int]) -> str:
    return left + cross.join(fill * (width + 2) for width in widths) + right


def _line(cells: list[str], widths: list[int], bar: str, style: Style | None) -> Iterator[Segment]:
    padded = [
        f" {cell}{' ' * (width - cell_len(cell))} "
        for cell, width in zip(cells, widths, strict=True)
    ]
    if style is None:
        yield Segment(bar + bar.join(padded) + bar + "\n")
        return
    for cell in padded:
        yield Segment(bar)
        yield Segment(cell, style)
    yield Segment(bar + "\n")
