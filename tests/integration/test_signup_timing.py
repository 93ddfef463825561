"""The sign-up form's one promise: nobody learns who subscribes, not even from its timing.

50 known and 50 new addresses go to a real uvicorn in a shuffled order, one at a
time, and the two groups' response times must not be separable. The check is a
rank statistic (the probability that a known address answers faster than a new
one, 0.5 when they cannot be told apart) with a wide band, and a ratio of medians
with a generous tolerance: a loaded two-core machine moves every request, but
interleaving moves both groups alike. The figures are written out (``-s``) for the record.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import pytest

from feedsvc.web import subscribe
from tests.integration.signup_site import Site, form_token, running_site, session, signup

PER_GROUP = 50
WARM_UP = 10


def probability_of_faster(known: list[float], new: list[float]) -> float:
    """P(a known address answers before a new one), ties half: the Mann-Whitney AUC."""
    wins = sum((k < n) + 0.5 * (k == n) for k in known for n in new)
    return wins / (len(known) * len(new))


async def timed_signups(site: Site, order: list[tuple[str, str]]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"known": [], "new": [], "warm-up": []}
    async with session() as client:
        token = await form_token(client, f"{site.base}/")
        for group, email in order:
            started = time.perf_counter()
            async with client.post(f"{site.base}/subscribe", data=signup(token, email)) as r:
                await r.read()
                assert r.status == 200, email
            times[group].append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)  # let the sender finish in between
    return times


async def test_known_and_new_addresses_take_the_same_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    monkeypatch.setattr(subscribe, "PER_CLIENT", (1000, subscribe.PER_CLIENT[1]))
    async with running_site(tmp_path) as site:
        known = [site.add_active(f"da.dang.ky{n}@example.vn").email for n in range(PER_GROUP)]
        new = [f"chua.dang.ky{n}@example.vn" for n in range(PER_GROUP)]
        order = [("known", e) for e in known] + [("new", e) for e in new]
        random.Random(9).shuffle(order)
        warm_up = [("warm-up", f"khoi.dong{n}@example.vn") for n in range(WARM_UP)]
        times = await timed_signups(site, warm_up + order)

    auc = probability_of_faster(times["known"], times["new"])
    medians = {group: statistics.median(times[group]) for group in ("known", "new")}
    figures = (
        "; ".join(
            f"{group}: min {min(times[group]):.2f} ms, median {medians[group]:.2f} ms, "
            f"max {max(times[group]):.2f} ms"
            for group in ("known", "new")
        )
        + f"; P(known faster than new) = {auc:.2f}"
    )
    sys.stdout.write(figures + "\n")  # for the record, with -s
    assert 0.2 <= auc <= 0.8, f"the groups are separable: {figures}"
    assert 2 / 3 <= medians["known"] / medians["new"] <= 3 / 2, figures
