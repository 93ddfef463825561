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
import ipaddress
import os
import re
import typing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import idna
import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
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


# What a From or Reply-To header can carry as it is: an ASCII dot-atom address
# (RFC 5322 3.2.3) on a host name, alone or after a display name.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
_MAILBOX_ADDRESS = re.compile(f"{_LOCAL}@{_DOMAIN}")
_NAME_ADDR = re.compile(r"(?P<name>.*?)\s*<(?P<address>[^<>]*)>")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _check_mailbox(value: str) -> str:
    """``Name <address>`` or a bare ``address``, usable as it is in a From or Reply-To header.

    Checked here, with its line, because a value the message builder refuses
    would fail every delivery long after ``feedsvc check`` said ok.
    """
    if _CONTROL.search(value):
        raise ValueError(f"{value!r} contains a control character (a line break?)")
    match = _NAME_ADDR.fullmatch(value.strip())
    address = match["address"].strip() if match else value.strip()
    if _MAILBOX_ADDRESS.fullmatch(address):
        return value
    raise ValueError(f"{value!r}{_mailbox_hint(address)}")


def _mailbox_hint(address: str) -> str:
    """What is wrong with an address that is not a plain ASCII one, and what to write."""
    local, _, domain = address.rpartition("@")
    try:  # IDNA 2008 with UTS 46, as the envelope of every message carries domains
        a_label = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        a_label = domain
    if local and _MAILBOX_ADDRESS.fullmatch(f"{local}@{a_label}"):
        return f": write the domain as its A-label: {local}@{a_label}"
    plain_word = re.fullmatch(r'[^\s<>()\[\],;:"\\@]+', local)
    if plain_word and not local.isascii() and _MAILBOX_ADDRESS.fullmatch(f"x@{a_label}"):
        return ": the address must be ASCII (mail servers without SMTPUTF8 refuse it)"
    return ' is not an email address (e.g. "Bản tin <bantin@example.vn>")'


TimeZone = Annotated[str, AfterValidator(_check_timezone)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
Mailbox = Annotated[str, AfterValidator(_check_mailbox)]


class Site(_Model):
    title: str
    base_url: HttpUrl
    language: Literal["vi", "en"] = "vi"
    timezone: TimeZone = "Asia/Ho_Chi_Minh"
    secret_key_env: str = "FEEDSVC_SECRET_KEY"
    templates_dir: Path = Path("templates")  # own templates, each overriding the packaged one
    logo_url: HttpUrl | None = None  # shown in emails and on edition pages


class Storage(_Model):
    url: str | None = None  # default: SQLite in data_dir


def _check_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip()))
    except ValueError:
        pass
    try:
        meant = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)"
        ) from None
    raise ValueError(f"{value!r} has host bits set: write {meant}")


Network = Annotated[str, AfterValidator(_check_network)]


class Http(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    status_page: bool = False
    # A client gets this long to send a request's headers, then its body; an idle
    # keep-alive connection is closed after keep_alive_timeout (web/protocol.py).
    header_timeout: Duration = Field(default=timedelta(seconds=10), gt=timedelta(0))
    body_timeout: Duration = Field(default=timedelta(seconds=30), gt=timedelta(0))
    keep_alive_timeout: Duration = Field(default=timedelta(seconds=5), gt=timedelta(0))
    max_connections: int = Field(default=256, ge=1, le=100_000)  # beyond: 503
    trusted_proxies: list[Network] = []  # whose X-Forwarded-For/-Proto is believed
    admin: bool = False  # the /admin console (web/admin), signed in with the hash below
    admin_password_env: str = "FEEDSVC_ADMIN_PASSWORD_HASH"


class Fetch(_Model):
    interval: Duration = timedelta(minutes=15)
    timeout: Duration = timedelta(seconds=20)
    max_bytes: Size = 10_000_000
    max_entries: int = Field(default=500, ge=1, le=100_000)  # per document, the first (newest) kept
    concurrency: int = Field(default=20, ge=1, le=1000)
    allow_private_networks: bool = False
    max_backoff: Duration = timedelta(hours=12)  # errors back a source off up to this
    lease: Duration = timedelta(minutes=5)  # how long a process may hold a claimed source


def _check_selector(selector: str) -> str:
    """A CSS selector lxml can run (cssselect translates it to XPath once, here)."""
    from cssselect import GenericTranslator, SelectorError

    try:
        GenericTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None
    return selector


class FullText(_Model):
    """``full_text: true``, or ``{selector: "div.article-content"}`` where trafilatura's
    guess of the article is not good enough for a site."""

    selector: Annotated[str, AfterValidator(_check_selector)] | None = None


def _full_text(value: object) -> object:
    """``true`` is the short form of ``{}``; ``false`` (and absent) is None."""
    if value is True:
        return {}
    if value is False:
        return None
    if value is None or isinstance(value, dict):
        return value
    raise ValueError('write true, false or {selector: "div.article-content"}')


class SourceConfig(_Model):
    id: Slug
    url: HttpUrl
    title: str | None = None
    categories: list[Slug] = []
    interval: Duration | None = None
    timezone: TimeZone | None = None  # zone of dates without one; default site.timezone
    # Fetch each new entry's page when the feed gives only a lead (ingest.fulltext).
    full_text: Annotated[FullText | None, BeforeValidator(_full_text)] = None


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


class Localized(_Model):
    """A text people read, per language (``{vi: "Hằng ngày", en: "Daily"}``); a plain
    string is the same in both."""

    vi: str | None = None
    en: str | None = None

    def get(self, locale: str) -> str | None:
        return (self.en if locale == "en" else self.vi) or self.vi or self.en


def _localized(value: object) -> object:
    return {"vi": value, "en": value} if isinstance(value, str) else value


Text = Annotated[Localized, BeforeValidator(_localized)]


class Schedule(_Model):
    """A digest schedule: a cron expression in ``site.timezone``, and how people read it."""

    cron: Cron
    title: Text | None = None  # "Hằng ngày, 7 giờ sáng"; default: the name, translated
    intro: Text | None = None  # a line at the top of each email and edition page


def _schedule(value: object) -> object:
    """A bare cron string is the short form; its mistakes are reported at its own line."""
    return {"cron": _check_cron(value)} if isinstance(value, str) else value


class Newsletter(_Model):
    from_: Mailbox = Field(default="feedsvc <feedsvc@localhost>", alias="from")
    reply_to: Mailbox | None = None
    schedules: dict[Slug, Annotated[Schedule, BeforeValidator(_schedule)]] = {
        "daily": Schedule(cron="0 7 * * *")
    }
    default_schedule: str = "daily"
    max_items_per_category: int = Field(default=10, ge=1, le=100)

    def cron(self, schedule: str) -> str:
        """The cron expression of ``schedule`` (``KeyError`` if there is none)."""
        return self.schedules[schedule].cron


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


def _check_bounce_mailbox(value: str) -> str:
    """An ``imap://`` or ``imaps://`` URL naming user, host and folder, or a Maildir path."""
    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("imap", "imaps"):
        raise ValueError(f"{value!r}: use imap://user@host/FOLDER, imaps://… or a Maildir path")
    if not parts.username or not parts.hostname or parts.path.strip("/") == "":
        raise ValueError(
            f"{value!r}: name the user, the host and the folder: imap://user@host/INBOX"
        )
    if parts.password:  # not echoed: the message goes to logs and terminals
        raise ValueError("no password in the URL: put it in the variable named by password_env")
    return value


class Bounces(_Model):
    """Where delivery reports that arrive after sending are read (``mail.bounces``).

    ``imap://`` talks STARTTLS on port 143 and ``imaps://`` TLS on 993; a server
    that offers no TLS is refused. ``address`` is the return path whose
    ``LOCAL+TOKEN@domain`` variants (VERP) reach this mailbox.
    """

    mailbox: Annotated[str, AfterValidator(_check_bounce_mailbox)]
    password_env: str | None = None
    every: Duration = timedelta(minutes=5)  # how often the mailbox is read
    address: str | None = None  # default: bounces@ the domain of newsletter.from
    move_to: str | None = None  # IMAP: move processed messages here (default: flag them)
    ca_file: Path | None = None  # IMAP: a private CA to trust (a self-signed mail server)
    timeout: Duration = timedelta(seconds=30)

    @field_validator("address")
    @classmethod
    def _plain_address(cls, value: str | None) -> str | None:
        if value is not None and (value.count("@") != 1 or "+" in value or " " in value):
            raise ValueError(f"{value!r}: write a plain address such as bounces@example.vn")
        return value


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
    bounces: Bounces | None = None
    bounce_limit: int = Field(default=3, ge=1, le=100)  # permanent failures before "bounced"


def _check_address(value: str) -> str:
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@") or " " in value:
        raise ValueError(f"{value!r} is not an email address")
    return value


class Alerts(_Model):
    """Emails to the operators when a source fails or goes quiet (``alerts``).

    A source is quiet when nothing new came for ``quiet_factor`` times its median
    gap between new entries, and at least ``quiet_min``.
    """

    to: list[Annotated[str, AfterValidator(_check_address)]] = []
    after: Duration = timedelta(hours=6)  # failing this long is an incident
    quiet_factor: float = Field(default=4, ge=1)
    quiet_min: Duration = timedelta(days=2)


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
    alerts: Alerts = Alerts()
    path: Path = Field(default=Path(DEFAULT_PATH), exclude=True)
    _lines: _Lines | None = PrivateAttr(default=None)
    _name: str = PrivateAttr(default=DEFAULT_PATH)

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
    def templates_path(self) -> Path:
        return self.root / self.site.templates_dir

    @property
    def outbox_path(self) -> Path:
        return self.root / (self.mail.outbox_dir or self.data_dir / "outbox")

    @property
    def user_agent(self) -> str:
        """How feedsvc names itself to the servers it calls (feeds, WebSub hubs)."""
        from feedsvc import __version__

        return f"feedsvc/{__version__} (+{self.site.base_url})"

    def where(self, *loc: str | int) -> str:
        """``file:line`` of the key at ``loc`` (its nearest section when it is not in the file).

        Problems found after loading (``feedsvc check``'s look at the machine)
        point at the line the operator has to change, as loading's own do.
        """
        line = self._lines.line(loc, key=True) if self._lines else 1
        return f"{self._name}:{line}"

    def declares(self, *loc: str | int) -> bool:
        """Whether the file spells out the key at ``loc`` (rather than leaving the default)."""
        return self._lines is not None and self._lines.has(loc)

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
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from exc
    return parse_bytes(data, file)


def parse_bytes(data: bytes, file: Path) -> Config:
    """Validate the bytes of a config file, as read (a reload applies exactly what it saw)."""
    try:
        text = data.decode("utf-8")
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
    config._lines, config._name = lines, name
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
    keyed = False  # the model is a dict's value: the next part is a key of it (a name)
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return []
        annotation = field.annotation
        keyed = typing.get_origin(annotation) is dict
        args = [
            typing.get_args(a)[0] if typing.get_origin(a) is Annotated else a
            for a in getattr(annotation, "__args__", ())
        ]
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

    def has(self, loc: Loc) -> bool:
        return loc in self._value

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
