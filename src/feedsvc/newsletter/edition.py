"""Editions: the shared, impersonal part of a digest, kept for "view in browser" and
the archive. Pure: a digest and what it was made for in, an ``Edition`` out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from feedsvc.model import Digest, Edition, EditionSection


def edition_of(
    schedule: str, period: datetime, locale: str, categories: Sequence[str], digest: Digest
) -> Edition:
    """The edition ``digest`` belongs to; its id is a hash of the content, the same in
    every process, so the link can go in the email before any row is read back."""
    sections = tuple(  # every story, also those the email only counts ("… and 3 more")
        EditionSection(s.category_id, tuple(e.id for e in (*s.entries, *s.rest)), 0)
        for s in digest.sections
    )
    key = [
        schedule,
        period.isoformat(),
        locale,
        sorted(categories),
        [[s.category_id, list(s.entry_ids), s.more] for s in sections],
    ]
    digest_id = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    return Edition(digest_id, schedule, period, locale, tuple(categories), sections)
