"""The labelled set of tests/data/stories: its items, its labels, and a detection run over it.

Items are RSS files, one per source, parsed by the real parser; labels.json
beside them gives each item's cluster, series part and acceptable and
forbidden related items (README.md there says how they were decided).
``run`` detects every item in publication order against a ``MemoryIndex``
holding the items before it, as a store would hold them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from feedsvc.ingest.parse import parse_feed
from feedsvc.model import ParsedEntry
from feedsvc.stories.detect import detect
from feedsvc.stories.memory import MemoryIndex
from feedsvc.stories.model import Detection, StoryText

STORIES = Path(__file__).parents[1] / "data" / "stories"
NOW = datetime(2025, 7, 1, tzinfo=UTC)  # after every item


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    story: StoryText
    label: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Run:
    items: list[Item]
    detections: dict[str, Detection]
    clusters: dict[str, int]  # item key -> detected cluster id
    keys: dict[int, str]  # entry id -> item key

    def related(self, key: str) -> list[str]:
        return [self.keys[r.entry_id] for r in self.detections[key].related]


@cache
def parsed() -> list[tuple[str, ParsedEntry]]:
    """Every item as the parser gives it, with its source, in publication order."""
    found = []
    for path in sorted(STORIES.glob("*.rss")):
        feed = parse_feed(
            path.read_bytes(),
            url=f"https://feeds.example.vn/{path.stem}.rss",
            headers={"Content-Type": "application/rss+xml"},
            timezone="Asia/Ho_Chi_Minh",
            now=NOW,
        )
        found += [(path.stem, entry) for entry in feed.entries]
    found.sort(key=lambda pair: (pair[1].published or NOW, pair[1].link or ""))
    return found


def label_of(link: str) -> dict[str, Any]:
    return _labels()[link]


@cache
def _labels() -> dict[str, dict[str, Any]]:
    return {i["link"]: i for i in json.loads((STORIES / "labels.json").read_text())["items"]}


@cache
def items() -> list[Item]:
    """Every item in publication order, entry ids 1, 2, … in that order."""
    found = []
    for entry_id, (source, entry) in enumerate(parsed(), start=1):
        assert entry.published is not None
        assert entry.link is not None
        story = StoryText(
            entry_id=entry_id,
            source_id=source,
            title=entry.title,
            published=entry.published,
            summary=entry.summary,
            content=entry.content,
            link=entry.link,
            guid=entry.guid,
        )
        found.append(Item(label_of(entry.link)["key"], story, label_of(entry.link)))
    return found


def run(detector: Callable[..., Detection] = detect) -> Run:
    """Detect every item against the items before it."""
    index = MemoryIndex()
    detections = {}
    for item in items():
        detection = detector(item.story, index, now=NOW)
        index.add(detection)
        detections[item.key] = detection
    return Run(
        items=items(),
        detections=detections,
        clusters={key: d.cluster.cluster_id for key, d in detections.items()},
        keys={item.story.entry_id: item.key for item in items()},
    )


@dataclass(frozen=True, slots=True)
class Pairwise:
    """Pairwise precision and recall of a clustering against the labels."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.true_positives + self.false_negatives
        return self.true_positives / labelled if labelled else 1.0


def pairwise(run: Run) -> Pairwise:
    tp = fp = fn = 0
    for a, b in itertools.combinations(run.items, 2):
        labelled = a.label["cluster"] == b.label["cluster"]
        found = run.clusters[a.key] == run.clusters[b.key]
        tp += labelled and found
        fp += found and not labelled
        fn += labelled and not found
    return Pairwise(tp, fp, fn)


@dataclass(frozen=True, slots=True)
class RelatedScore:
    """Related stories against the labels: acceptable, neutral and forbidden ones found.

    ``expected`` counts, per item, min(3, the acceptable stories (clusters)
    published in the 30 days before it): what a perfect "Đọc thêm" would show.
    """

    acceptable: int
    neutral: int
    forbidden: list[tuple[str, str]]
    expected: int

    @property
    def recall(self) -> float:
        return self.acceptable / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        found = self.acceptable + self.neutral + len(self.forbidden)
        return self.acceptable / found if found else 1.0


def related_score(run: Run) -> RelatedScore:
    by_key = {item.key: item for item in run.items}
    acceptable = neutral = expected = 0
    forbidden = []
    for item in run.items:
        for key in run.related(item.key):
            if key in item.label["related_forbidden"]:
                forbidden.append((item.key, key))
            elif key in item.label["related_ok"]:
                acceptable += 1
            else:
                neutral += 1
        earlier = {
            by_key[key].label["cluster"]
            for key in item.label["related_ok"]
            if by_key[key].story.published < item.story.published
        }
        expected += min(3, len(earlier))
    return RelatedScore(acceptable, neutral, forbidden, expected)
