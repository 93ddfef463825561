"""Remote text on the operator's terminal: shown as the characters it is, never obeyed.

A feed server writes its own reason phrase and headers, a feed its own title, and
both reach ``feedsvc poll`` and ``sources list``. Printed as they come, rich reads
``[bold red]`` in them as markup (and raises ``MarkupError`` on a stray ``[/x]``),
and the terminal obeys escape sequences: OSC 0 retitles the window, OSC 8 hides a
link behind other text, CSI clears or paints the screen. Every remote string the
CLI shows goes through :func:`shown`: a rich ``Text`` is never parsed for markup,
and control characters are gone before it is made.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 and C1 controls (ESC starts every sequence; C1 CSI and OSC start them in one
# character), DEL, and the invisible characters that reorder or hide what a line
# shows: bidirectional embeddings, overrides and isolates, zero-width characters.
_HIDDEN = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_BREAKS = re.compile("[\t\n\x0b\x0c\r]+")


def plain(text: str) -> str:
    """``text`` as one line of characters a terminal only displays.

    Line breaks and tabs become one space (a table cell is one line); every other
    control or invisible formatting character is dropped.
    """
    return _HIDDEN.sub("", _BREAKS.sub(" ", text))


def shown(text: str | None) -> Text:
    """A table cell or line for ``text`` (None: empty) that rich prints literally."""
    return Text(plain(text or ""))
