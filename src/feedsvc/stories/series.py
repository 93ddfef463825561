"""Series: the parts of one report published over several days ("Bài 1", "Bài 2", …).

A title marks a part ("Bài 2:", "Bài 2 -", "Kỳ 3:", "Phần 2", "Part 2",
"(Bài 2)", "(Tiếp theo)", "Bài cuối"), but a marker alone does not say which
series: a paper runs several at once, and "Bài 1" of one outlet has nothing
to do with "Bài 2" of another. A part therefore joins a series of the same
source, recent enough (``SERIES_WINDOW``) and about the same subject: the
same kicker before the marker ("Giữ rừng Vũ Quang - Kỳ 2: …"), or text
similar enough (``SERIES_MIN``), since parts often share no title word after
the marker ("Bài 1: Quyết tâm về đích trước thời hạn…", "Bài 2: Huy động tổng
lực…") while their leads tell of the same programme.

Words that look like markers but are not stay out: "Kỳ họp thứ 25" (a
session), "Kỳ Anh" and "Vạn Phần" (places), "Bài học" (a lesson), "2 phần 3"
(two thirds): a marker word must be followed by its number and then by the
end of the marker (a colon, a dash, a bracket or the end of the title).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from feedsvc.stories.model import Series, SeriesCandidate, SeriesMarker, TermVector
from feedsvc.stories.syllables import fold

SERIES_WINDOW = timedelta(days=28)
SERIES_MIN = 0.12  # cosine between a new part and the closest part of the series

_WORD = r"(?:bài|kỳ|kì|phần|part|tập)"
_NUMBER = r"(?P<number>\d{1,2}|[ivx]{1,4}|cuối|final)"
_END = r"\s*(?:[:.\-–—|]\s*|$)"
_LEADING = re.compile(
    rf"^(?:(?P<kicker>.+?)\s*[-–—:,|]\s*)?{_WORD}\s+{_NUMBER}{_END}(?P<rest>.*)$", re.IGNORECASE
)
_TRAILING = re.compile(rf"^(?P<rest>.+?)\s*\(\s*{_WORD}\s+{_NUMBER}\s*\)\s*$", re.IGNORECASE)
_CONTINUED = re.compile(
    r"^(?P<rest>.*?)\s*\(\s*(?:tiếp theo|tiếp|kỳ cuối|bài cuối|continued)\s*\)"
    r"\s*(?:[:.\-–—]\s*)?(?P<after>.*)$",
    re.IGNORECASE,
)
_ROMAN = {r: n for n, r in enumerate("i ii iii iv v vi vii viii ix x".split(), start=1)}


def parse_marker(title: str) -> SeriesMarker | None:
    """The series marker of ``title``, or None when it marks no part."""
    leading = _LEADING.match(title)
    if leading:
        part, rest = _part_number(leading.group("number")), leading.group("rest").strip()
        return SeriesMarker(part, kicker=_folded(leading.group("kicker") or ""), rest=rest)
    trailing = _TRAILING.match(title)  # "Tên loạt bài (Bài 2)": the title is the kicker
    if trailing:
        rest = trailing.group("rest").strip()
        return SeriesMarker(_part_number(trailing.group("number")), _folded(rest), rest)
    continued = _CONTINUED.match(title)
    if continued:
        head = continued.group("rest").strip()
        rest = " ".join(filter(None, (head, continued.group("after").strip())))
        return SeriesMarker(part=None, kicker=_folded(head), rest=rest)
    return None


def choose_series(
    entry_id: int,
    marker: SeriesMarker | None,
    vector: TermVector,
    candidates: Sequence[SeriesCandidate],
) -> Series | None:
    """The series a new entry continues, a new series it starts, or None (no marker).

    Args:
        candidates: the stored parts of the same source published in the
            ``SERIES_WINDOW`` before the entry (the store's lookup).
    """
    if marker is None:
        return None
    best: Series | None = None
    for series_id, parts in _by_series(candidates).items():
        taken = {p.part for p in parts}
        part = marker.part if marker.part is not None else max(taken) + 1
        if part in taken:
            continue  # that series has its part already: this is another series
        matched, similarity = _closest(marker, vector, parts)
        if similarity >= SERIES_MIN and (best is None or similarity > best.similarity):
            best = Series(series_id, part, matched, similarity)
    if best is not None:
        return best
    return Series(series_id=entry_id, part=marker.part if marker.part is not None else 2)


def _closest(
    marker: SeriesMarker, vector: TermVector, parts: Sequence[SeriesCandidate]
) -> tuple[int, float]:
    """The part most like the new one: a shared kicker counts as a perfect match."""
    scored = [
        (1.0 if marker.kicker and p.kicker == marker.kicker else vector.cosine(p.vector), p)
        for p in parts
    ]
    similarity, part = max(scored, key=lambda pair: (pair[0], -pair[1].entry_id))
    return part.entry_id, similarity


def _by_series(candidates: Sequence[SeriesCandidate]) -> dict[int, list[SeriesCandidate]]:
    grouped: dict[int, list[SeriesCandidate]] = {}
    for candidate in candidates:
        grouped.setdefault(candidate.series_id, []).append(candidate)
    return grouped


def _part_number(number: str) -> int | None:
    lowered = number.lower()
    if lowered.isdigit():
        return int(lowered)
    return _ROMAN.get(lowered)  # None for "cuối" / "final": the part after the last


def _folded(text: str) -> str:
    return " ".join(fold(word) for word in text.split())
