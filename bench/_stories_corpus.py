"""A large generated newsroom for the story-detection benchmark.

Each generated story starts from one item of the labelled set
(tests/data/stories), moved to another place (one of the province, district
and commune names below) with other amounts, and with a share of its
syllables replaced by syllables drawn from the set's own vocabulary (so as
often as they occur there: common syllables stay common). One to four
outlets report it, each with a rewritten copy (another share of syllables
replaced, some dropped). Entries come in time order over ``days`` days. The
output is deterministic for a seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

from tests.unit._stories_set import items

from feedsvc.stories.model import StoryText

PLACES = (
    "Hà Tĩnh Nghệ An Quảng Bình Thanh Hóa Quảng Trị Huế Đà Nẵng Quảng Nam Hà Nội "
    "Hải Phòng Nam Định Thái Bình Ninh Bình Lào Cai Yên Bái Sơn La Điện Biên Cao Bằng "
    "Lạng Sơn Bắc Giang Quảng Ninh Gia Lai Đắk Lắk Lâm Đồng Khánh Hòa Bình Định Phú Yên "
    "Cần Thơ An Giang Kiên Giang Cà Mau Bạc Liêu Sóc Trăng Vĩnh Long Bến Tre Tiền Giang "
    "Thạch Hà Cẩm Xuyên Kỳ Anh Hương Sơn Hương Khê Vũ Quang Đức Thọ Can Lộc Nghi Xuân "
    "Diễn Châu Quỳnh Lưu Nghi Lộc Đô Lương Thanh Chương Lệ Thủy Bố Trạch Quảng Trạch"
).split()
_WORD = re.compile(r"\S+")
_NUMBER = re.compile(r"\d+")


def stories(count: int, *, start: datetime, days: int, seed: int = 1) -> Iterator[StoryText]:
    """``count`` entries, ids 1…count, from about 40 sources, published over ``days`` days."""
    rng = random.Random(seed)
    templates = [(i.story.title, i.story.summary) for i in items()]
    vocabulary = [w for _, summary in templates for w in summary.split()]
    sources = [f"source-{n:02d}" for n in range(40)]
    step = timedelta(days=days) / count
    entry_id = 0
    while entry_id < count:
        title, summary = _event(rng.choice(templates), rng, vocabulary)
        when = start + step * entry_id
        for source in rng.sample(sources, rng.choice((1, 1, 2, 2, 3, 4))):
            entry_id += 1
            if entry_id > count:
                return
            yield StoryText(
                entry_id=entry_id,
                source_id=source,
                title=_rewrite(title, rng, vocabulary, 0.3),
                published=when + timedelta(minutes=rng.randrange(0, 600)),
                summary=_rewrite(summary, rng, vocabulary, 0.15),
                link=f"https://{source}.example.vn/{entry_id}.html",
            )


def _event(template: tuple[str, str], rng: random.Random, vocabulary: list[str]) -> tuple[str, str]:
    """Another event on a template's subject: another place, other amounts, other words."""
    title, summary = template
    place = " ".join(rng.sample(PLACES, 2))
    amounts = {n: str(rng.randrange(2, 20000)) for n in _NUMBER.findall(title + summary)}

    def change(text: str) -> str:
        text = _NUMBER.sub(lambda m: amounts[m.group()], text)
        for name in ("Hà Tĩnh", "Nghệ An", "Thạch Hà", "Cẩm Xuyên", "Kỳ Anh", "Hương Sơn"):
            text = text.replace(name, place)
        return _rewrite(text, rng, vocabulary, 0.35)

    return change(title), change(summary)


def _rewrite(text: str, rng: random.Random, vocabulary: list[str], share: float) -> str:
    """``text`` with about ``share`` of its words replaced or dropped."""
    words = []
    for word in _WORD.findall(text):
        roll = rng.random()
        if roll < share / 3:
            continue
        words.append(rng.choice(vocabulary) if roll < share else word)
    return " ".join(words)
