"""What the CLI prints of remote text: the characters, never markup or terminal commands."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from feedsvc._terminal import plain, shown


def test_controls_and_invisible_formatting_are_dropped() -> None:
    text = "a\x1b[31mb\x07c\x9bd\u202eevil\u2066e\u200bf\ufeffg"
    assert plain(text) == "a[31mbcdevilefg"


def test_line_breaks_and_tabs_become_one_space() -> None:
    assert plain("HTTP 599\r\n\tsecond line") == "HTTP 599 second line"


def test_markup_is_printed_as_written() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    table = Table("error")
    table.add_row(shown("[/x] [bold red]BOOM"))
    console.print(table)
    console.print(shown(None))
    assert "[/x] [bold red]BOOM" in console.file.getvalue()  # type: ignore[attr-defined]
