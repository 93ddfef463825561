"""OPML 2.0: reading feed lists other readers export, writing ours.

Pure: bytes in, outlines out (and back). Parsed with the standard library's
expat, which refuses entity-expansion bombs on its own (expat >= 2.4).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from feedsvc.errors import FeedsvcError


class OpmlError(FeedsvcError):
    """The file is not OPML we can read."""


@dataclass(frozen=True, slots=True)
class Outline:
    url: str
    title: str = ""
    category: str = ""  # the title of the folder outline it sat in, if any
    html_url: str = ""


def read(data: bytes) -> list[Outline]:
    """Every outline with an ``xmlUrl``, with the folder it was filed under."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OpmlError(f"not valid OPML: {exc}") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise OpmlError("not OPML: no <opml><body>")
    return list(_walk(body, ""))


def _walk(node: ET.Element, folder: str) -> Iterable[Outline]:
    for child in node.findall("outline"):
        title = (child.get("title") or child.get("text") or "").strip()
        url = (child.get("xmlUrl") or "").strip()
        if url:
            yield Outline(url, title, folder, (child.get("htmlUrl") or "").strip())
        yield from _walk(child, title if not url else folder)


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
