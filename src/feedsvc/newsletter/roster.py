"""Subscriber lists as CSV (``email,categories,schedule,locale``), and checking one row.

Import is forgiving per row and strict per field: every bad row is reported
with its line number and the good rows are imported anyway. Pure: text in,
rows and problems out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from feedsvc.config import Config
from feedsvc.i18n import LOCALES
from feedsvc.model import Subscriber

COLUMNS = ("email", "categories", "schedule", "locale")


@dataclass(frozen=True, slots=True)
class Signup:
    """A valid request to subscribe, before it is stored."""

    email: str
    categories: tuple[str, ...]
    schedule: str
    locale: str


def normalize_email(text: str) -> str:
    """The address as stored (domain lower-cased, Unicode NFC); ValueError says what is wrong."""
    try:
        return str(validate_email(text.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def check_signup(
    config: Config,
    email: str,
    categories: Sequence[str],
    schedule: str | None,
    locale: str | None,
) -> Signup:
    """Validate one subscription against the configuration; ValueError names the bad field."""
    address = normalize_email(email)
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
    return Signup(address, tuple(dict.fromkeys(categories)), schedule, locale)


def read_csv(config: Config, text: str) -> tuple[list[Signup], list[str]]:
    """Signups from CSV text, and one ``line N: problem`` per bad row."""
    rows = csv.reader(io.StringIO(text))
    signups: list[Signup] = []
    problems: list[str] = []
    for line, row in enumerate(rows, start=1):
        if not row or (line == 1 and row[0].strip().lower() == "email"):
            continue  # blank line, or the header
        cells = [cell.strip() for cell in row] + [""] * (4 - len(row))
        try:
            signups.append(
                check_signup(config, cells[0], cells[1].split(), cells[2] or None, cells[3] or None)
            )
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
    return signups, problems


def write_csv(subscribers: Iterable[Subscriber]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in subscribers:
        writer.writerow([s.email, " ".join(s.categories), s.schedule, s.locale])
    return out.getvalue()
