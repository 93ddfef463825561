"""The only package that speaks SQL. It hands out and takes back ``model`` dataclasses.

``Store.open(url)`` gives one object per process with a repository per table
group (``store.sources``, ``store.entries``, ``store.categories``,
``store.documents``, ``store.fragments``, ``store.settings``, ``store.bounces``,
``store.reading``…);
each method is one transaction.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from feedsvc.store import migrate
from feedsvc.store.activity import ActivityStore
from feedsvc.store.bounces import BounceStore
from feedsvc.store.categories import CategoryStore
from feedsvc.store.confirmations import ConfirmationStore
from feedsvc.store.console import ConsoleStore
from feedsvc.store.deliveries import DeliveryStore
from feedsvc.store.documents import DocumentStore, SettingStore
from feedsvc.store.editions import EditionStore
from feedsvc.store.engine import create
from feedsvc.store.entries import EntryStore
from feedsvc.store.fragments import FragmentStore
from feedsvc.store.incidents import IncidentStore
from feedsvc.store.reading import ReadingStore
from feedsvc.store.search import SearchIndex
from feedsvc.store.sources import SourceStore
from feedsvc.store.stories import StoryStore
from feedsvc.store.subscribers import SubscriberStore


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sources = SourceStore(engine)
        self.entries = EntryStore(engine, self.sources)
        self.categories = CategoryStore(engine)
        self.documents = DocumentStore(engine)
        self.fragments = FragmentStore(engine)
        self.settings = SettingStore(engine)
        self.subscribers = SubscriberStore(engine)
        self.confirmations = ConfirmationStore(engine)
        self.deliveries = DeliveryStore(engine)
        self.editions = EditionStore(engine)
        self.bounces = BounceStore(engine)
        self.incidents = IncidentStore(engine)
        self.activity = ActivityStore(engine)
        self.console = ConsoleStore(engine)
        self.reading = ReadingStore(engine)
        self.stories = StoryStore(engine)
        self.search = SearchIndex(engine)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Store:
        """Connect to ``url``; with ``upgrade`` (the default) migrate the schema first."""
        store = cls(create(url))
        if upgrade:
            migrate.upgrade(store.engine)
        return store

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["Store"]
