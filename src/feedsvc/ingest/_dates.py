"""Entry dates as feeds really write them, read in the source's time zone.

feedparser reads RFC 822 and ISO 8601 but gets the dates Vietnamese sites
publish wrong: ``Thứ bảy, 10/05/2025 - 07:45`` is not parsed at all,
``28-11-2026`` comes back as 2028-11-20, ``ICT`` is taken for UTC, and every
zoneless date is assumed to be UTC when the site meant its own local time. So
the raw string is parsed here first, day first, with a missing zone meaning the
source's ``tz``; feedparser's own result is only the fallback for the exotic
formats it knows (and is re-read as local time when the raw string has no zone).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from feedsvc._text import clean_line

FUTURE_TOLERANCE = timedelta(days=1)  # clock skew and zone mistakes, not scheduled posts
_LONGEST_DATE = 80  # "Chủ nhật, 28/11/2026 - 07:30:00 (GMT+07:00)" is 43

_WEEKDAY = r"(?:(?:thứ|chủ)\s*\w+|cn|t[2-7]|[^\W\d_]{3,9}\.?)\s*,?\s*"
_TIME = r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,]\d+)?)?"
# ISO 8601 after a "T": hh, hh:mm[:ss] or the basic hhmm[ss], one separator throughout
_ISO_TIME = r"(?P<H>\d{2})(?:(?P<sep>:?)(?P<M>\d{2})(?:(?P=sep)(?P<S>\d{2})(?:[.,]\d+)?)?)?"
_ZONE = (
    r"(?P<zone>z|[+-]\d{1,2}(?::?\d{2})?"
    r"|\(?\s*(?:gmt|utc|ut)\s*(?:[+-]\s*\d{1,2}(?::?\d{2})?)?\s*\)?|[a-z]{1,5})"
)
_PATTERNS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # 2002-12-31T19:20:30+01:00, 2002-12-31T192030+0100, 20021231T1920Z, 20021231
        rf"(?P<y>\d{{4}})(-?)(?P<m>\d{{2}})\2(?P<d>\d{{2}})(?:t{_ISO_TIME})?\s*{_ZONE}?",
        # 28/11/2026 07:30, Thứ bảy, 10/05/2025 - 07:45, 28-11-2026, 10.05.2025, 07:45 GMT+7
        rf"(?:{_WEEKDAY})?(?P<d>\d{{1,2}})[/.-](?P<m>\d{{1,2}})[/.-](?P<y>\d{{4}})"
        rf"(?:\s*[-,]?\s*{_TIME})?\s*{_ZONE}?",
        # 2025-05-10 07:45:00, 2025-05-10T07:45:00.123+07:00, 2025/05/10, 2025-05-10
        rf"(?P<y>\d{{4}})([/.-])(?P<m>\d{{1,2}})\2(?P<d>\d{{1,2}})(?:(?:t|\s+){_TIME})?\s*{_ZONE}?",
        # Sat, 10 May 2025 07:45:00 +0700 (RFC 822, which feedparser takes ICT in as UTC)
        rf"(?:{_WEEKDAY})?(?P<d>\d{{1,2}})\s+(?P<mon>[a-z]{{3,9}})\.?,?\s+(?P<y>\d{{2,4}})"
        rf"(?:\s+{_TIME})?\s*{_ZONE}?",
    )
)
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_NAMED_ZONES = {
    "z": 0, "ut": 0, "utc": 0, "gmt": 0, "ict": 7,
    "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7,
    # RFC 822's military zones had their signs published backwards; RFC 1123 5.2.14 and
    # RFC 2822 4.3 say they carry no information and read as -0000.
    **dict.fromkeys("abcdefghiklmnopqrstuvwxy", 0),
}  # fmt: skip
# An ISO 8601 date with a time we could not read: feedparser would return its midnight.
_ISO_WITH_TIME = re.compile(r"\d{4}-?\d{2}-?\d{2}t", re.IGNORECASE)
_OFFSET = re.compile(r"(?:gmt|utc|ut)?([+-])(\d{1,2})(?::?(\d{2}))?")
# Does a zone follow the time (or end an ISO basic date)? If not, feedparser's UTC was a guess.
_HAS_ZONE = re.compile(
    r"\d(?::\d\d)+(?:[.,]\d+)?\s*(?:z\b|[+-]\d{2}:?\d{2}|\(?\s*(?:gmt|utc|ut)\b|[a-z]{1,5}\b)|\dz$",
    re.IGNORECASE,
)


def parse_date(
    raw: str | None, tz: tzinfo, fallback: time.struct_time | None = None
) -> datetime | None:
    """Return ``raw`` as an aware UTC datetime, or None if it cannot be read.

    Args:
        raw: the date exactly as the feed wrote it.
        tz: the source's time zone, for dates that name none.
        fallback: feedparser's parse of ``raw`` (UTC), used only for formats
            not recognised here.
    """
    text = clean_line(raw or "")
    if not text:
        return None
    if len(text) > _LONGEST_DATE:  # not a date; keep the regexes off hostile input
        return _from_feedparser(fallback, text, tz)
    for pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        zone = _zone(match["zone"], tz)
        if zone is None:
            break  # a zone name we do not know; feedparser might
        return _from_match(match, zone)
    if _ISO_WITH_TIME.match(text):
        return None  # read wrong is worse than not read: the entry is dated when first seen
    return _from_feedparser(fallback, text, tz)


def choose_published(
    candidates: Iterable[tuple[str | None, time.struct_time | None]], tz: tzinfo, now: datetime
) -> tuple[datetime | None, str | None]:
    """Pick the first readable date of ``candidates`` and say why when there is none.

    Returns ``(published, date_flag)``; the flag is ``missing`` (no date at all),
    ``unparseable`` or ``future`` (more than a day ahead of ``now``: a wrong
    clock or zone, which would otherwise pin the entry to the top of every feed).
    """
    seen_raw = False
    for raw, fallback in candidates:
        seen_raw = seen_raw or bool(raw and raw.strip())
        parsed = parse_date(raw, tz, fallback)
        if parsed is not None:
            if parsed > now + FUTURE_TOLERANCE:
                return None, "future"
            return parsed, None
    return None, ("unparseable" if seen_raw else "missing")


def _from_match(match: re.Match[str], zone: tzinfo) -> datetime | None:
    parts = match.groupdict()
    month = _MONTHS.get(parts["mon"][:3].lower(), 0) if parts.get("mon") else int(parts["m"])
    year = int(parts["y"])
    if year < 100:  # RFC 822 two-digit years
        year += 2000 if year < 50 else 1900
    if not month:
        return None
    try:
        local = datetime(
            year, month, int(parts["d"]),
            int(parts["H"] or 0), int(parts["M"] or 0), min(int(parts["S"] or 0), 59),
            tzinfo=zone,
        )  # fmt: skip
        return local.astimezone(UTC)
    except (ValueError, OverflowError):  # 31/02, hour 25, year 1 in UTC-x
        return None


def _zone(name: str | None, tz: tzinfo) -> tzinfo | None:
    """Map a zone suffix to a tzinfo: none means ``tz``; unknown names mean None."""
    if not name:
        return tz
    key = "".join(name.strip("() ").lower().split())
    if key in _NAMED_ZONES:
        return timezone(timedelta(hours=_NAMED_ZONES[key]))
    match = _OFFSET.fullmatch(key)
    if not match:
        return None
    sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if offset > timedelta(hours=14) or int(minutes or 0) >= 60:
        return None
    return timezone(-offset if sign == "-" else offset)


def _from_feedparser(parsed: time.struct_time | None, text: str, tz: tzinfo) -> datetime | None:
    if parsed is None:
        return None
    try:
        naive = datetime(*parsed[:5], min(parsed[5], 59))
        if _HAS_ZONE.search(text):
            return naive.replace(tzinfo=UTC)
        return naive.replace(tzinfo=tz).astimezone(UTC)  # feedparser guessed UTC
    except (ValueError, OverflowError, TypeError):
        return None
