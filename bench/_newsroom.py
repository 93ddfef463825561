"""A benchmark newsroom: one SQLite file of stored, filed Vietnamese entries, and its config.

The publish and newsletter benchmarks start from the state a poll leaves: one
source per category, each source's feed written by `_prose` (about 4 KB of
Vietnamese per item, compressing like prose) and run through the real
``parse_feed``, stored with ``store.entries.apply`` and filed with
``Publisher.file``. Every entry was first seen an hour before the 07:00 (Hà Nội)
digest of `PERIOD` and published in the 17 hours before that, so it is new for
that digest; the sources were first polled long before, so nothing is backlog.
Subscribers, when asked for, are added active (confirmed) over `combinations`
of the categories. Nothing here is measured: it is the setup the scenarios copy.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import _prose
from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.ingest.parse import parse_feed
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store

PERIOD = datetime(2025, 5, 21, 0, 0, tzinfo=UTC)  # 07:00 in Hà Nội
SEEN = PERIOD - timedelta(hours=1)
_FIRST_POLL = datetime(2025, 1, 1, tzinfo=UTC)
SCHEDULE = "daily"
SENDER = "Bản tin Hà Tĩnh <bantin@example.vn>"
CATEGORIES = (
    ("xa-hoi", "Xã hội"),
    ("chinh-tri", "Chính trị"),
    ("kinh-te", "Kinh tế"),
    ("tre-em", "Trẻ em"),
    ("giao-duc", "Giáo dục"),
    ("the-thao", "Thể thao"),
    ("van-hoa", "Văn hóa"),
    ("du-lich", "Du lịch"),
    ("suc-khoe", "Sức khỏe"),
    ("phap-luat", "Pháp luật"),
    ("nong-nghiep", "Nông nghiệp"),
    ("moi-truong", "Môi trường"),
    ("quoc-phong", "Quốc phòng"),
    ("doi-song", "Đời sống"),
    ("khoa-hoc", "Khoa học"),
    ("cong-nghe", "Công nghệ"),
    ("giao-thong", "Giao thông"),
    ("xay-dung", "Xây dựng"),
    ("lao-dong", "Lao động"),
    ("ban-doc", "Bạn đọc"),
)


@dataclass(frozen=True, slots=True)
class Reader:
    email: str
    categories: tuple[str, ...]
    locale: str


def config_text(
    db: Path,
    *,
    categories: int,
    http_port: int = 8080,
    smtp_port: int = 25,
    digest_items: int = 10,
) -> str:
    """config.yaml for the newsroom's first ``categories`` categories, one source each,
    with ``digest_items`` stories per category in a digest."""
    lines = [
        "site:",
        '  title: "Báo Hà Tĩnh — Bản tin"',
        '  base_url: "https://bantin.example.vn"',  # public: the same whatever port serves it
        "storage:",
        f'  url: "sqlite:///{db}"',
        "http:",
        f"  port: {http_port}",
        "newsletter:",
        f'  from: "{SENDER}"',
        f"  max_items_per_category: {digest_items}",
        "mail:",
        "  backend: smtp",
        f"  smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false}}",
        "  concurrency: 4",
        "  rate_per_second: 1000000",  # far above what is reached: the limit never waits
        "sources:",
    ]
    for category_id, _ in CATEGORIES[:categories]:
        lines += [
            f"  - id: nguon-{category_id}",
            f'    url: "https://baohatinh.example.vn/rss/{category_id}.rss"',
            f"    categories: [{category_id}]",
        ]
    lines.append("categories:")
    for category_id, title in CATEGORIES[:categories]:
        lines += [
            f"  - id: {category_id}",
            f'    title: "{title}"',
            f'    description: "Tin {title.lower()} Hà Tĩnh"',
        ]
    return "\n".join(lines) + "\n"


def write_config(path: Path, db: Path, *, categories: int, **settings: int) -> Config:
    """Write ``config_text`` to ``path`` and load it as the service would."""
    path.write_text(config_text(db, categories=categories, **settings), encoding="utf-8")
    return config_module.load(path)


def build(work: Path, *, categories: int, entries: int, teaser_chars: int = 0) -> Path:
    """``work/newsroom.db``: ``entries`` stored and filed entries per category, their
    teasers (the summaries a digest shows) at least ``teaser_chars`` long."""
    db = work / "newsroom.db"
    config = write_config(work / "newsroom.yaml", db, categories=categories)
    store = Store.open(config.database_url)
    try:
        store.sources.sync([(s.id, s.url) for s in config.sources], SEEN)
        sources = {source.id: source for source in store.sources.list()}
        new_ids: list[int] = []
        for configured, category in zip(config.sources, config.categories, strict=True):
            body = _prose.rss(
                configured.id,
                category.title,
                entries=entries,
                newest=SEEN,
                teaser_chars=teaser_chars,
            )
            parsed = parse_feed(
                body, url=configured.url, headers={}, timezone=config.site.timezone, now=SEEN
            )
            values = {"first_polled_at": _FIRST_POLL}
            outcome = store.entries.apply(sources[configured.id], parsed, values, SEEN)
            new_ids += outcome.new_ids
        Publisher(config, store).file(new_ids)
    finally:
        store.close()
    return db


EDITED = " — đã cập nhật"  # what `edit_one` adds to the title of the first source's newest item


def edit_one(config: Config, store: Store, *, entries: int) -> list[int]:
    """Poll the first source again with its newest item's title edited; return the ids
    stored (the edited entry, at its next revision; the other items are unchanged)."""
    configured, category = config.sources[0], config.categories[0]
    body = _prose.rss(configured.id, category.title, entries=entries, newest=SEEN)
    body = body.replace(b" (1)</title>", f" (1){EDITED}</title>".encode(), 1)
    parsed = parse_feed(
        body, url=configured.url, headers={}, timezone=config.site.timezone, now=SEEN
    )
    source = next(s for s in store.sources.list() if s.id == configured.id)
    outcome = store.entries.apply(source, parsed, {}, SEEN + timedelta(minutes=5))
    if outcome.new or outcome.updated != 1:
        raise ValueError(f"expected one entry edited, got {outcome}")
    return list(outcome.updated_ids)


def copy(db: Path, target: Path) -> Path:
    """A fresh copy of the newsroom for one run (SQLite's backup API: WAL content included)."""
    with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(target)) as copied:
        source.backup(copied)
    return target


def combinations(categories: int, count: int) -> list[tuple[str, ...]]:
    """``count`` distinct sets of one to three of the first ``categories`` categories."""
    ids = [category_id for category_id, _ in CATEGORIES[:categories]]
    sets = itertools.chain(
        ((i,) for i in ids), itertools.combinations(ids, 2), itertools.combinations(ids, 3)
    )
    found = list(itertools.islice(sets, count))
    if len(found) < count:
        raise ValueError(f"{categories} categories make fewer than {count} combinations")
    return found


def subscribers(total: int, combos: list[tuple[str, ...]]) -> Iterator[Reader]:
    """``total`` readers spread evenly over ``combos``; every fifth combination reads English."""
    for n in range(total):
        combo = n % len(combos)
        yield Reader(f"doc-gia-{n:05d}@example.vn", combos[combo], "en" if combo % 5 == 4 else "vi")


def add_subscribers(db: Path, work: Path, *, categories: int, total: int, combos: int) -> None:
    """Add ``total`` active subscribers of ``SCHEDULE`` to the newsroom at ``db``."""
    config = write_config(work / "newsroom.yaml", db, categories=categories)
    store = Store.open(config.database_url)
    try:
        for reader in subscribers(total, combinations(categories, combos)):
            store.subscribers.add(
                reader.email,
                categories=reader.categories,
                schedule=SCHEDULE,
                locale=reader.locale,
                timezone="Asia/Ho_Chi_Minh",
                confirmed=True,
                now=_FIRST_POLL,
            )
    finally:
        store.close()


TOPICS = (
    "cầu vượt",
    "Người dân",
    "nhà ở",
    "chương trình",
    "kinh nghiệm",
    "huong son",
    "giao thương",
    "tỷ lệ",
    "đà nẵng",
    "bão số 3",
    "Hà Nội",
    "bóng đá",
    "covid-19",
    "lũ lụt",
)
"""Topics the benchmark's followers pick two of: phrases of the samples (toned or not) and
phrases that match nothing, so some followers get a topics section and some do not."""


def add_topics(db: Path, work: Path, *, categories: int, every: int) -> int:
    """Give every ``every``-th subscriber two of :data:`TOPICS` (pairs in turn, so most
    followers' (categories, topics) differ); return how many follow topics."""
    config = write_config(work / "newsroom.yaml", db, categories=categories)
    pairs = list(itertools.combinations(TOPICS, 2))
    store = Store.open(config.database_url)
    try:
        followers = store.subscribers.list()[::every]
        for n, reader in enumerate(followers):
            store.subscribers.update(reader.id, topics=pairs[n % len(pairs)])
    finally:
        store.close()
    return len(followers)
