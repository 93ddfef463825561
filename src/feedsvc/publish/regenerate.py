"""Filing entries under categories and regenerating the stored feed documents.

This is the publish stage's I/O shell: it detects the stories of new entries
(``store.stories``), reads entries from the store, calls the pure ``classify``,
``dedupe``, ``one_per_story`` and ``render_cached``, and stores documents. It
runs once per poll (not once per source), for the categories that poll changed.
Each entry's part of a document is rendered once per revision and cached in the
store (``publish.fragments``); a document is assembled from those.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from feedsvc import metrics
from feedsvc.classify import Classifier
from feedsvc.config import Config
from feedsvc.model import Entry, PollResult
from feedsvc.publish.feeds import MEDIA_TYPES, FeedInfo, Format
from feedsvc.publish.fragments import context_key, render_cached
from feedsvc.publish.opml import render_opml
from feedsvc.store import Store
from feedsvc.stories.clusters import one_per_story
from feedsvc.stories.exact import dedupe
from feedsvc.stories.model import StoryContext

log = logging.getLogger("feedsvc.publish")

ALL = "all"
OPML = "feeds.opml"
_FINGERPRINT_KEY = "classification"
_OWED_KEY = "publish.owed"  # "1" from filing until the feeds are written


class Publisher:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._classifier = Classifier(config.categories)
        self._source_categories = {s.id: s.categories for s in config.sources}

    def after_poll(self, results: Sequence[PollResult], now: datetime) -> list[str]:
        """File what the poll stored or edited, then regenerate what changed.

        It files every unfiled entry, not only this poll's: entries stored by a
        poll that was killed before it got here are filed by the next one, also
        when that one stores nothing; and feeds a killed poll filed entries for but
        never wrote are written then.
        """
        owed = self.store.settings.get(_OWED_KEY) == "1"
        stored = any(result.entry_ids for result in results)
        if not stored and not owed and not self.store.categories.unfiled(limit=1):
            return []
        self.detect(now)
        # Durable until the feeds are written: a kill between filing and regenerating
        # leaves the mark, and the next poll regenerates every feed even if it stores
        # nothing (the filing itself is durable through ``entries.filed``).
        self.store.settings.set(_OWED_KEY, "1")
        touched = self.file_unfiled()
        every = [c.id for c in self.config.categories]
        changed = self.regenerate([*touched, ALL, *(every if owed else ())], now)
        self.store.settings.set(_OWED_KEY, "")
        return changed

    def detect(self, now: datetime) -> int:
        """Detect the story of every entry that has none yet (this poll's, a killed
        one's, or all of them after an upgrade); return how many entries' items changed.

        Members of a story or series a new entry joined are marked unfiled, so the
        filing that follows regenerates their feeds too.
        """
        changed = self.store.stories.detect_pending(now)
        if changed:
            log.info("stories detected", extra={"fields": {"changed": len(changed)}})
        return len(changed)

    def feed_urls(self, documents: Sequence[str]) -> list[str]:
        """The public URLs of changed feed documents (what a WebSub hub is told)."""
        base = self.config.site.base_url.rstrip("/")
        return [f"{base}/feeds/{name}" for name in documents if name != OPML]

    async def announce(self, documents: Sequence[str]) -> None:
        """Ping the configured WebSub hub about changed feeds (no hub: nothing to do)."""
        hub = self.config.feeds.websub_hub
        if hub and documents:
            from feedsvc.publish.websub import announce

            await announce(hub, self.feed_urls(documents), user_agent=self.config.user_agent)

    def file(self, entry_ids: Sequence[int]) -> set[str]:
        """Classify these entries; return every category whose feed they enter or leave."""
        touched: set[str] = set()
        for start in range(0, len(entry_ids), 1000):
            touched |= self._file(self.store.categories.entries(entry_ids[start : start + 1000]))
        return touched

    def file_unfiled(self) -> set[str]:
        """Classify every entry still marked unfiled (new, edited, or left by a kill)."""
        touched: set[str] = set()
        while batch := self.store.categories.unfiled():
            touched |= self._file(batch)
        return touched

    def _file(self, entries: Sequence[Entry]) -> set[str]:
        filed = {
            entry.id: self._classifier(entry, self._source_categories.get(entry.source_id, ()))
            for entry in entries
        }
        return self.store.categories.assign(filed)

    def regenerate(self, categories: Iterable[str], now: datetime) -> list[str]:
        """Render and store the feeds of ``categories``; return the documents that changed."""
        known = {category.id: category for category in self.config.categories}
        changed: list[str] = []
        for category_id in dict.fromkeys(categories):
            if category_id == ALL:
                info = FeedInfo.for_all(self.config.site, self.config.feeds.websub_hub)
            elif category_id in known:
                info = FeedInfo.for_category(
                    self.config.site, known[category_id], self.config.feeds.websub_hub
                )
            else:
                continue  # a category removed from config.yaml: nothing to publish
            changed += self._store_feed(info, now)
        if changed:
            log.info("regenerated", extra={"fields": {"documents": " ".join(changed)}})
            metrics.FEEDS_REGENERATED.inc(len(changed))
        return changed

    def _store_feed(self, info: FeedInfo, now: datetime) -> list[str]:
        limit = self.config.feeds.max_items
        # Twins of a story take room before dedupe: read more than will be shown.
        newest = self.store.categories.newest(None if info.id == ALL else info.id, limit * 2)
        stories = self.store.stories.contexts([entry.id for entry in newest])
        entries = one_per_story(dedupe(newest), stories)[:limit]
        documents = self.render_feed(info, entries, now, stories)
        return [
            f"{info.id}.{fmt}"
            for fmt, body in documents.items()
            if self.store.documents.put(
                f"{info.id}.{fmt}", f"{MEDIA_TYPES[fmt]}; charset=utf-8", body, now
            )
        ]

    def render_feed(
        self,
        info: FeedInfo,
        entries: Sequence[Entry],
        now: datetime,
        stories: Mapping[int, StoryContext] | None = None,
    ) -> dict[Format, bytes]:
        """``render_all``'s documents, each entry's part taken from the fragment cache
        when it is current there; the fragments rendered afresh are cached."""
        formats = self.config.feeds.formats
        context = context_key(info.entry_context)
        cached = self.store.fragments.get([entry.id for entry in entries], formats, context)
        documents, built = render_cached(formats, info, entries, now, cached, stories or {})
        self.store.fragments.put(built, context)
        return documents

    def publish_all(self, now: datetime) -> list[str]:
        """File what is unfiled, reclassify if the categories changed, then regenerate
        every feed and the OPML."""
        self.detect(now)
        if not self.reclassify_if_changed():
            self.file_unfiled()
        changed = self.regenerate([ALL, *(c.id for c in self.config.categories)], now)
        opml = render_opml(
            self.config.site.title,
            self.config.site.base_url,
            self.config.categories,
            self.config.feeds.formats,
            now,
        )
        if self.store.documents.put(OPML, "text/x-opml; charset=utf-8", opml, now):
            changed.append(OPML)
        self.store.settings.set(_OWED_KEY, "")  # every feed is written
        return changed

    def reclassify_if_changed(self) -> bool:
        """Refile every stored entry when the categories or the sources' categories changed."""
        fingerprint = self._fingerprint()
        if self.store.settings.get(_FINGERPRINT_KEY) == fingerprint:
            return False
        count = 0
        for batch in self.store.categories.batches():
            self._file(batch)
            count += len(batch)
        self.store.settings.set(_FINGERPRINT_KEY, fingerprint)
        log.info("reclassified", extra={"fields": {"entries": count}})
        return True

    def _fingerprint(self) -> str:
        """A hash of everything classification depends on."""
        state = {
            "categories": [c.model_dump() for c in self.config.categories],
            "sources": self._source_categories,
        }
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
