"""config.yaml: pydantic models of the whole schema, and a loader that reports every
problem as ``config.yaml:LINE: what is wrong``.

The operator edits this file by hand, so a mistake must point at its line and,
for a misspelt key, suggest the right one. Validation runs in two passes: the
models check each value, then :func:`_cross_checks` checks what refers to what
(a source's categories, duplicate ids, the default schedule). Both passes report
a path such as ``("sources", 2, "interval")`` that :class:`_Lines` maps back to
a line of the file.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from feedsvc._units import parse_duration, parse_size
from feedsvc.errors import ConfigError

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Loc = tuple[str | int, ...]

DEFAULT_PATH = "config.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Ho_Chi_Minh)") from None
    return name


def _check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


TimeZone = Annotated[str, AfterValidator(_check_timezone)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class Site(_Model):
    title: str
    base_url: HttpUrl
    language: Literal["vi", "en"] = "vi"
    timezone: TimeZone = "Asia/Ho_Chi_Minh"
    secret_key_env: str = "FEEDSVC_SECRET_KEY"


class Storage(_Model):
    url: str | None = None  # default: SQLite in data_dir


class Http(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    status_page: bool = False


class Fetch(_Model):
    interval: Duration = timedelta(minutes=15)
    timeout: Duration = timedelta(seconds=20)
    max_bytes: Size = 10_000_000
    concurrency: int = Field(default=20, ge=1, le=1000)
    allow_private_networks: bool = False
    max_backoff: Duration = timedelta(hours=12)  # errors back a source off up to this
    lease: Duration = timedelta(minutes=5)  # how long a process may hold a claimed source


class SourceConfig(_Model):
    id: Slug
    url: HttpUrl
    title: str | None = None
    categories: list[Slug] = []
    interval: Duration | None = None
    timezone: TimeZone | None = None  # zone of dates without one; default site.timezone


class Category(_Model):
    id: Slug
    title: str
    description: str = ""
    keywords: list[str] = []
    match_diacritics: bool = True
    feed_categories: list[str] = []


class Feeds(_Model):
    max_items: int = Field(default=50, ge=1, le=1000)
    formats: list[Literal["rss", "atom", "json"]] = ["rss", "atom", "json"]
    websub_hub: HttpUrl | None = None


class Retention(_Model):
    days: int = Field(default=90, ge=1)


def _check_cron(expression: str) -> str:
    try:
        CronTrigger.from_crontab(expression)
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None
    return expression


Cron = Annotated[str, AfterValidator(_check_cron)]


class Newsletter(_Model):
    from_: str = Field(default="feedsvc <feedsvc@localhost>", alias="from")
    reply_to: str | None = None
    schedules: dict[Slug, Cron] = {"daily": "0 7 * * *"}
    default_schedule: str = "daily"
    max_items_per_category: int = Field(default=10, ge=1, le=100)


class Smtp(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    tls: bool = False
    username: str | None = None
    password_env: str | None = None
    timeout: Duration = timedelta(seconds=30)


class Dkim(_Model):
    domain: str
    selector: str
    private_key_file: Path


class Mail(_Model):
    backend: Literal["outbox", "smtp"] = "outbox"
    outbox_dir: Path | None = None  # default: data_dir/outbox
    smtp: Smtp = Smtp()
    concurrency: int = Field(default=4, ge=1, le=100)
    rate_per_second: float = Field(default=20, gt=0)
    lease: Duration = timedelta(minutes=2)  # a claimed delivery unsent this long is taken over
    retry_delay: Duration = timedelta(minutes=1)  # after a 4xx; doubles with each attempt
    max_attempts: int = Field(default=5, ge=1, le=50)
    dkim: Dkim | None = None


class Config(_Model):
    """The whole of config.yaml. Relative paths are relative to the file's folder."""

    site: Site
    data_dir: Path = Path("var")
    storage: Storage = Storage()
    http: Http = Http()
    fetch: Fetch = Fetch()
    sources: list[SourceConfig] = []
    categories: list[Category] = []
    feeds: Feeds = Feeds()
    retention: Retention = Retention()
    newsletter: Newsletter = Newsletter()
    mail: Mail = Mail()
    path: Path = Field(default=Path(DEFAULT_PATH), exclude=True)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.resolve()

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def data_path(self) -> Path:
        return self.root / self.data_dir

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, with a relative SQLite path anchored at the config's folder."""
        url = self.storage.url or f"sqlite:///{self.data_dir}/feedsvc.db"
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.root / url[len(prefix) :])
        return url

    @property
    def outbox_path(self) -> Path:
        return self.root / (self.mail.outbox_dir or self.data_dir / "outbox")

    @property
    def user_agent(self) -> str:
        """How feedsvc names itself to the servers it calls (feeds, WebSub hubs)."""
        from feedsvc import __version__

        return f"feedsvc/{__version__} (+{self.site.base_url})"

    def source(self, source_id: str) -> SourceConfig:
        """The configured source ``source_id`` (``KeyError`` if there is none)."""
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    def source_interval(self, source: SourceConfig) -> timedelta:
        return source.interval or self.fetch.interval

    def source_timezone(self, source: SourceConfig) -> str:
        return source.timezone or self.site.timezone


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The file to read: the argument, else $FEEDSVC_CONFIG, else ./config.yaml."""
    return Path(path or os.environ.get("FEEDSVC_CONFIG") or DEFAULT_PATH)


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate config.yaml.

    Raises:
        ConfigError: with every problem found, each as ``file:line: message``.
    """
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    return parse(text, file)


def parse(text: str, file: Path) -> Config:
    """Validate the text of a config file; ``file`` names it in messages and anchors paths."""
    name = str(file)
    try:
        node, data = _read_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{name}:{line}: YAML syntax error: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{name}: YAML error: {exc}"]) from None
    lines = _Lines(node)
    problems = [f"{name}:{line}: {message}" for line, message in lines.duplicates]
    if not isinstance(data, dict):
        raise ConfigError([f"{name}:1: expected a mapping of sections (site:, sources:, …)"])
    config: Config | None = None
    try:
        config = Config.model_validate({**data, "path": file})
    except ValidationError as exc:
        problems += [_describe(error, lines, name) for error in exc.errors()]
    problems += [f"{name}:{lines.line(loc)}: {message}" for loc, message in _cross_checks(data)]
    if problems or config is None:
        raise ConfigError(sorted(problems, key=_line_number))
    return config


def _read_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, from one parse.

    libyaml's parser when PyYAML has it: a config of 2,000 sources took 1.3 s to
    read with the pure-Python one, twice over, in every command. A file it
    refuses is read again by the pure-Python parser, whose messages ours are.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    except yaml.YAMLError:
        if loader.__class__ is yaml.SafeLoader:
            raise
    finally:
        loader.dispose()
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return node, (yaml.safe_load(text) if node is not None else None)


def _line_number(problem: str) -> int:
    head = problem.split(": ", 1)[0]
    number = head.rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else 0


def check(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Every problem in the file, for ``feedsvc check``; empty when it is valid."""
    try:
        load(path)
    except ConfigError as exc:
        return exc.problems
    return []


def _cross_checks(data: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """What the models alone cannot see: references between sections and unique ids.

    Runs on the raw data, so these problems are reported together with the
    models' own even when some values are invalid.
    """
    categories = _items(data.get("categories"))
    sources = _items(data.get("sources"))
    category_ids = [str(item.get("id")) for item in categories]
    if "all" in category_ids:
        yield (
            ("categories", category_ids.index("all"), "id"),
            "category id 'all' is reserved for the feed of every entry (/feeds/all.rss)",
        )
    yield from _duplicates("categories", "category", category_ids)
    yield from _duplicates("sources", "source", [str(item.get("id")) for item in sources])
    for index, source in enumerate(sources):
        refs = source.get("categories")
        for position, category in enumerate(refs if isinstance(refs, list) else []):
            if str(category) not in category_ids:
                hint = _did_you_mean(str(category), category_ids)
                yield (
                    ("sources", index, "categories", position),
                    f"source {source.get('id')!r} refers to unknown category {category!r}{hint}",
                )
    newsletter = data.get("newsletter")
    if not isinstance(newsletter, dict):
        newsletter = {}
    schedules = newsletter.get("schedules", Newsletter().schedules)
    default = newsletter.get("default_schedule", Newsletter().default_schedule)
    if isinstance(schedules, dict) and default not in schedules:
        hint = _did_you_mean(str(default), [str(name) for name in schedules])
        yield (
            ("newsletter", "default_schedule"),
            f"default_schedule {default!r} is not one of newsletter.schedules{hint}",
        )


def _items(value: object) -> list[dict[str, Any]]:
    return (
        [item if isinstance(item, dict) else {} for item in value]
        if isinstance(value, list)
        else []
    )


def _duplicates(section: str, noun: str, ids: list[str]) -> Iterator[tuple[Loc, str]]:
    seen: set[str] = set()
    for index, item in enumerate(ids):
        if item in seen:
            yield (section, index, "id"), f"duplicate {noun} id {item!r}"
        seen.add(item)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(error: Any, lines: _Lines, name: str) -> str:
    """One pydantic error as ``config.yaml:LINE: path: message``."""
    loc: Loc = tuple(error["loc"])
    # Errors inside Annotated validators carry the validator's tag in loc; drop non-keys.
    loc = tuple(part for part in loc if isinstance(part, int) or not part.startswith("function-"))
    where = _dotted(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _field_names(loc[:-1])
        hint = _did_you_mean(str(loc[-1]), parent)
        return f"{name}:{lines.line(loc, key=True)}: unknown key {where!r}{hint}"
    if kind == "missing":
        return f"{name}:{lines.line(loc[:-1], key=True)}: missing required key {where!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        message = "use lower-case letters, digits, '-' and '_' (it appears in URLs)"
    return f"{name}:{lines.line(loc)}: {where}: {message}"


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _field_names(loc: Loc) -> list[str]:
    """The keys the model at ``loc`` accepts, for "did you mean"."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next(
            (a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)),
            None,
        )
        if model is None:
            return []
    return [field.alias or key for key, field in model.model_fields.items() if key != "path"]


class _Lines:
    """Line numbers of every key and value in a composed YAML document."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._value: dict[Loc, int] = {}
        self._key: dict[Loc, int] = {}
        self.duplicates: list[tuple[int, str]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self._value[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    self.duplicates.append((line, f"duplicate key {_dotted((*loc, key))!r}"))
                seen.add(key)
                self._key[(*loc, key)] = key_node.start_mark.line + 1
                self._walk(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*loc, index))

    def line(self, loc: Loc, *, key: bool = False) -> int:
        """The line of ``loc``, or of its nearest ancestor present in the file."""
        table = self._key if key else self._value
        while loc:
            if loc in table:
                return table[loc]
            if loc in self._value:
                return self._value[loc]
            loc = loc[:-1]
        return 1
