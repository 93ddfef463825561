"""Subscriber lists as CSV, and checking one address or one row.

Export writes ``email,categories,schedule,locale,status,created_at,confirmed_at,topics``;
import reads those, or the first four or seven alone (files from before status
or topics were exported). Categories are space-separated; topics, which hold
spaces, are separated by ``;`` (``đà nẵng; bão``, see ``newsletter.topics``).
Import is forgiving per row and strict per field: every bad row is reported
with its line number and the good rows are imported anyway.

A cell that a spreadsheet would run as a formula (one beginning ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) is written with a leading ``'``, as
OWASP's CSV-injection advice says; import takes that quote off again, so an
export imports back as it was. Pure: text in, rows and problems out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email

from feedsvc.config import Config
from feedsvc.i18n import LOCALES
from feedsvc.model import Subscriber, SubscriberStatus
from feedsvc.newsletter.address import needs_smtputf8
from feedsvc.newsletter.topics import check_topics, write_cell

COLUMNS = (
    "email",
    "categories",
    "schedule",
    "locale",
    "status",
    "created_at",
    "confirmed_at",
    "topics",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Address:
    """A valid address as stored (domain lower-cased, NFC), and whether it needs SMTPUTF8.

    SMTPUTF8 (RFC 6531) is needed for a non-ASCII local part only: an
    internationalized domain travels as its A-label (newsletter.address).
    """

    email: str
    smtputf8: bool


@dataclass(frozen=True, slots=True)
class Signup:
    """A valid request to subscribe, before it is stored."""

    email: str
    categories: tuple[str, ...]
    schedule: str
    locale: str
    smtputf8: bool = False
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Row:
    """One imported row: the sign-up, and what an export said of its consent (if it did)."""

    signup: Signup
    status: SubscriberStatus | None = None
    created_at: datetime | None = None
    confirmed_at: datetime | None = None


def check_address(text: str) -> Address:
    """The address as stored; ValueError says what is wrong with it."""
    try:
        valid = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    email = str(valid.normalized)
    return Address(email, needs_smtputf8(email))


def normalize_email(text: str) -> str:
    """The address as stored (domain lower-cased, Unicode NFC); ValueError says what is wrong."""
    return check_address(text).email


def check_signup(
    config: Config,
    email: str,
    categories: Sequence[str],
    schedule: str | None,
    locale: str | None,
    topics: Sequence[str] = (),
) -> Signup:
    """Validate one subscription against the configuration; ValueError names the bad field
    (``topics.TopicError`` for the topics)."""
    address = check_address(email)
    known = [category.id for category in config.categories]
    unknown = [c for c in categories if c not in known]
    if unknown:
        raise ValueError(f"unknown categories: {' '.join(unknown)} (known: {' '.join(known)})")
    if not categories:
        raise ValueError("choose at least one category")
    schedule = schedule or config.newsletter.default_schedule
    if schedule not in config.newsletter.schedules:
        names = " ".join(config.newsletter.schedules)
        raise ValueError(f"unknown schedule {schedule!r} (known: {names})")
    locale = locale or config.site.language
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r} (vi or en)")
    followed = check_topics(topics)
    return Signup(
        address.email,
        tuple(dict.fromkeys(categories)),
        schedule,
        locale,
        address.smtputf8,
        followed,
    )


def read_csv(config: Config, text: str) -> tuple[list[Row], list[str]]:
    """Rows from CSV text, and one ``line N: problem`` per bad row."""
    rows: list[Row] = []
    problems: list[str] = []
    for line, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not cells or (line == 1 and cells[0].strip().lower() == "email"):
            continue  # blank line, or the header
        try:
            rows.append(read_row(config, [unquote(cell.strip()) for cell in cells]))
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
    return rows, problems


def read_row(config: Config, cells: Sequence[str]) -> Row:
    """One row's cells (4, 7 or 8 columns, missing ones empty) as a Row; ValueError if bad."""
    email, categories, schedule, locale, status, created, confirmed, followed = [
        *cells,
        *[""] * (len(COLUMNS) - len(cells)),
    ][: len(COLUMNS)]
    signup = check_signup(
        config, email, categories.split(), schedule or None, locale or None, [followed]
    )
    try:
        state = SubscriberStatus(status) if status else None
    except ValueError:
        names = " ".join(s.value for s in SubscriberStatus)
        raise ValueError(f"unknown status {status!r} (known: {names})") from None
    return Row(signup, state, _when(created, "created_at"), _when(confirmed, "confirmed_at"))


def _when(text: str, column: str) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not an ISO 8601 time") from None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def write_csv(subscribers: Iterable[Subscriber]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in subscribers:
        cells = [
            s.email,
            " ".join(s.categories),
            s.schedule,
            s.locale,
            s.status.value,
            s.created_at.isoformat(),
            s.confirmed_at.isoformat() if s.confirmed_at else "",
            write_cell(s.topics),
        ]
        writer.writerow([quote(cell) for cell in cells])
    return out.getvalue()


def quote(cell: str) -> str:
    """``cell`` as no spreadsheet runs it: a leading ``'`` before a formula's first character.

    A cell that already starts with quotes before such a character gets one more,
    so that :func:`unquote` gives back exactly what was written.
    """
    return f"'{cell}" if cell.lstrip("'").startswith(FORMULA_STARTS) else cell


def unquote(cell: str) -> str:
    """Undo :func:`quote`: one ``'`` fewer before a formula's first character."""
    return cell[1:] if cell.startswith("'") and quote(cell[1:]) == cell else cell
