"""OPML 2.0: reading feed lists other readers export, writing ours.

Pure: bytes in, outlines out (and back). Read with the standard library's expat,
which refuses entity-expansion bombs on its own (expat >= 2.4), event by event so
that each outline keeps its line: an import reports a bad outline where the
operator can find it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from xml.parsers import expat

from feedsvc.errors import FeedsvcError


class OpmlError(FeedsvcError):
    """The file is not OPML we can read."""


@dataclass(frozen=True, slots=True)
class Outline:
    url: str
    title: str = ""
    category: str = ""  # the title of the folder outline it sat in, if any
    html_url: str = ""
    line: int = field(default=0, compare=False)  # where it is in the file read; 0 if made here


def read(data: bytes) -> list[Outline]:
    """Every outline with an ``xmlUrl``, with the folder it was filed under and its line."""
    reader = _Reader()
    parser = expat.ParserCreate()
    parser.StartElementHandler = lambda tag, attributes: reader.start(
        tag, attributes, parser.CurrentLineNumber
    )
    parser.EndElementHandler = reader.end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise OpmlError(f"not valid OPML: {exc}") from None
    if not reader.is_opml:
        raise OpmlError("not OPML: no <opml><body>")
    return reader.outlines


class _Reader:
    """Collects the outlines under ``<opml><body>``, nested folders and all."""

    def __init__(self) -> None:
        self.outlines: list[Outline] = []
        self.is_opml = False
        # Per open element: the folder its child outlines sit in, None outside <body>.
        self._folders: list[str | None] = []
        self._root = ""

    def start(self, tag: str, attributes: dict[str, str], line: int) -> None:
        self._root = self._root or tag
        folder = self._folders[-1] if self._folders else None
        if tag == "body" and len(self._folders) == 1 and self._root == "opml":
            self.is_opml = True
            self._folders.append("")
        elif tag == "outline" and folder is not None:
            self._folders.append(self._outline(attributes, folder, line))
        else:
            self._folders.append(None)

    def _outline(self, attributes: dict[str, str], folder: str, line: int) -> str:
        """Record a feed outline; return the folder its children (if any) sit in."""
        title = (attributes.get("title") or attributes.get("text") or "").strip()
        url = (attributes.get("xmlUrl") or "").strip()
        if not url:
            return title  # a folder
        html_url = (attributes.get("htmlUrl") or "").strip()
        self.outlines.append(Outline(url, title, folder, html_url, line))
        return folder

    def end(self, _tag: str) -> None:
        self._folders.pop()


def write(title: str, outlines: Iterable[Outline], now: datetime) -> bytes:
    """An OPML 2.0 document, feeds grouped into folders by ``category``."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for outline in outlines:
        parent = body
        if outline.category:
            if outline.category not in folders:
                folders[outline.category] = ET.SubElement(
                    body, "outline", text=outline.category, title=outline.category
                )
            parent = folders[outline.category]
        attributes = {"type": "rss", "text": outline.title or outline.url, "xmlUrl": outline.url}
        if outline.title:
            attributes["title"] = outline.title
        if outline.html_url:
            attributes["htmlUrl"] = outline.html_url
        ET.SubElement(parent, "outline", attributes)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
