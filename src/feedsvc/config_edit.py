"""Adding sources to config.yaml as text, so the operator's comments and layout survive.

config.yaml is the one place sources are defined (the database follows it), so
``feedsvc sources import-opml`` writes there. A YAML round trip would drop every
comment; instead the new items are inserted as text after the last item of the
``sources:`` list, indented like it, and the result is validated before it is
written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from feedsvc._text import fold_diacritics
from feedsvc.config import Config, SourceConfig
from feedsvc.opml import Outline


def add_sources(text: str, new: Sequence[SourceConfig]) -> str:
    """``text`` with ``new`` appended to its ``sources:`` list (created when missing)."""
    if not new:
        return text
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    node = _sources_node(root)
    if node is None or not isinstance(node, yaml.SequenceNode) or not node.value:
        block = "\n".join(_item(source, "  ") for source in new)
        body = re.sub(r"(?m)^sources:.*\n?", "", text) if node is not None else text
        return body.rstrip("\n") + "\n\nsources:\n" + block + "\n"
    last = node.value[-1]
    indent = " " * (node.value[0].start_mark.column - 2)
    lines = text.splitlines(keepends=True)
    end = last.end_mark.line + (1 if last.end_mark.column else 0)
    while end > 0 and not lines[end - 1].strip():
        end -= 1  # insert before the blank lines that separate sections
    block = "".join(_item(source, indent) + "\n" for source in new)
    if end and not lines[end - 1].endswith("\n"):
        block = "\n" + block
    return "".join(lines[:end]) + block + "".join(lines[end:])


def _sources_node(root: yaml.Node | None) -> yaml.Node | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if key.value == "sources":
            return value  # type: ignore[no-any-return]
    return None


def _item(source: SourceConfig, indent: str) -> str:
    """One list item in the style of the bundled config.yaml; strings JSON-quoted (valid YAML)."""
    lines = [f"{indent}- id: {source.id}", f"{indent}  url: {json.dumps(source.url)}"]
    if source.title:
        lines.append(f"{indent}  title: {json.dumps(source.title, ensure_ascii=False)}")
    if source.categories:
        lines.append(f"{indent}  categories: [{', '.join(source.categories)}]")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Skipped:
    """An outline that cannot be a source, and why (its line in the OPML file)."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class OpmlImport:
    """What an OPML file adds: new sources, and the outlines skipped."""

    sources: list[SourceConfig]
    skipped: list[Skipped]


def sources_from_outlines(
    config: Config, outlines: Sequence[Outline], categories: Sequence[str]
) -> OpmlImport:
    """New sources for the outlines whose URL is not configured yet.

    An outline filed in a folder named like a category (its id or title) joins
    that category, as well as any given with ``--category``. An outline that
    cannot be a source (its URL is not http(s)) is skipped and reported by line,
    as the subscriber CSV import reports its rows; the others are imported.
    """
    known_urls = {source.url for source in config.sources}
    taken = {source.id for source in config.sources}
    by_name = {c.title.casefold(): c.id for c in config.categories}
    by_name |= {c.id: c.id for c in config.categories}
    new: list[SourceConfig] = []
    skipped: list[Skipped] = []
    for outline in outlines:
        if outline.url in known_urls:
            continue
        folder = by_name.get(outline.category.casefold())
        wanted = [*categories, *([folder] if folder else [])]
        source_id = _unique(slugify(outline.title or outline.url), taken)
        try:
            source = SourceConfig(
                id=source_id,
                url=outline.url,
                title=outline.title or None,
                categories=list(dict.fromkeys(wanted)),
            )
        except ValidationError as exc:
            taken.discard(source_id)  # free for the next outline of that name
            skipped.append(Skipped(outline.line, _reason(exc)))
            continue
        known_urls.add(outline.url)
        new.append(source)
    return OpmlImport(new, skipped)


def _reason(exc: ValidationError) -> str:
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


def slugify(text: str) -> str:
    """ "Báo Hà Tĩnh — Xã hội" -> "bao-ha-tinh-xa-hoi" (ids appear in URLs)."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold_diacritics(text)).strip("-")
    return slug[:48].rstrip("-") or "source"


def _unique(slug: str, taken: set[str]) -> str:
    candidate, number = slug, 2
    while candidate in taken:
        candidate, number = f"{slug}-{number}", number + 1
    taken.add(candidate)
    return candidate


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` so a reader (or a crash) sees the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
