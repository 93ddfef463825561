"""The poll summary's table: every row on one line, aligned, plain text only."""

from __future__ import annotations

import io

from rich.console import Console

from feedsvc._table import PlainTable


def printed(table: PlainTable, *, terminal: bool = False) -> str:
    # As cli.out prints it: soft wrap, so a line past the width is left to the terminal.
    console = Console(
        file=io.StringIO(), force_terminal=terminal, highlight=False, soft_wrap=True, width=40
    )
    console.print(table)
    output = console.file.getvalue()
    assert isinstance(output, str)
    return output


def test_columns_are_as_wide_as_their_widest_cell_even_past_the_terminal() -> None:
    table = PlainTable("source", "status", "error")
    table.add_row("xa-hoi", "updated", "")
    table.add_row("tre-em", "error", "HTTP 503 Service Unavailable, thử lại sau 120 giây")
    lines = printed(table).splitlines()
    assert lines[0] == "┏━━━━━━━━┳━━━━━━━━━┳" + "━" * 52 + "┓"
    assert lines[1] == "┃ source ┃ status  ┃ error" + " " * 46 + "┃"
    assert lines[3] == "│ xa-hoi │ updated │" + " " * 52 + "│"
    assert lines[4] == "│ tre-em │ error   │ HTTP 503 Service Unavailable, thử lại sau 120 giây │"
    assert lines[5].startswith("└────────┴")
    assert {len(line) for line in lines} == {len(lines[0])}  # 4 rows and 3 rules, none wrapped


def test_remote_text_is_shown_as_text_never_as_markup_or_escape_codes() -> None:
    table = PlainTable("source", "error")
    table.add_row("x", "[red]HTTP 500[/red] \x1b[2J\x1b]0;owned\x07 end\r\nBcc: y")
    output = printed(table, terminal=True)
    assert "[red]HTTP 500[/red]" in output
    for control in ("\x1b[2J", "\x07", "\r"):
        assert control not in output
    assert "[2J" in output  # the escape itself became a space
    assert len(printed(table).splitlines()) == 5


def test_a_row_style_colours_the_row_in_a_terminal_only() -> None:
    table = PlainTable("source", "status")
    table.add_row("broken", "error", style="red")
    assert "\x1b[31m" in printed(table, terminal=True)
    assert "\x1b[" not in printed(table)
