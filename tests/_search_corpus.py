"""A stored newsroom to search: generated Vietnamese entries, the same on every backend.

The entries are ``bench._stories_corpus``'s (deterministic: the labelled story set
moved to other places, with syllables redrawn), stored through the real
``store.entries.apply`` a source at a time, in the same order on every backend,
so ids match; each is filed under one of three categories by its id.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from bench._stories_corpus import stories

from feedsvc.model import ParsedEntry, ParsedFeed
from feedsvc.store import Store

START = datetime(2026, 10, 1, tzinfo=UTC)
SEEN = datetime(2026, 11, 1, tzinfo=UTC)
CATEGORIES = ("xa-hoi", "kinh-te", "thoi-su")

# Readers' queries: common and rare words, toned and not, upper case, phrases, prefixes.
QUERIES = (
    "tỉnh", "tinh", "TỈNH", "ha tinh", "Hà Tĩnh", '"ha tinh"', "da nang", "Đà Nẵng",
    "nghe an", "quang*", "qua*", "thanh hoa", "chay", "cháy nhà", "ngheo", "hộ nghèo",
    "xe", "tai nan", "dan", "bao", "bão", "lu", "lũ lụt", "thi", "sinh vien", "tỷ đồng",
    "ty dong", '"ty dong"', "huyen ky anh", "tre em",
)  # fmt: skip


def fill(store: Store, count: int = 1000) -> None:
    """Store ``count`` generated entries (and file them), in one deterministic order."""
    generated = list(stories(count, start=START, days=30))
    sources = sorted({s.source_id for s in generated})
    store.sources.sync([(s, f"https://{s}.example.vn/rss") for s in sources], SEEN)
    by_source = {s.id: s for s in store.sources.list()}
    grouped: dict[str, list[ParsedEntry]] = defaultdict(list)
    for story in generated:
        grouped[story.source_id].append(
            ParsedEntry(
                identity=story.link or str(story.entry_id),
                title=story.title,
                link=story.link,
                summary=story.summary,
                published=story.published,
                content_hash=str(story.entry_id),
            )
        )
    filed: dict[int, list[str]] = {}
    for source_id in sources:
        feed = ParsedFeed(title=source_id, link=None, entries=tuple(grouped[source_id]))
        outcome = store.entries.apply(by_source[source_id], feed, {"status": "ok"}, SEEN)
        filed |= {i: [CATEGORIES[i % len(CATEGORIES)]] for i in outcome.new_ids}
    store.categories.assign(filed)
