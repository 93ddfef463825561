"""The newsletter benchmark of issue 4: what sending a digest to every subscriber costs.

A newsroom of 8 categories with 20 new entries each in the day (`_newsroom`,
summaries as long as a digest shows them) and 10,000 active subscribers spread
evenly over 20 combinations of one or two categories, every fifth combination
reading English: 20 variants of the digest, 14 stories per category, about 60
KB a message (issue 15: real-size messages).
Each run sends to a fresh aiosmtpd server (tests/smtpserver.py) in a process of
its own, so its CPU is not counted, and afterwards checks from the server's
counts that every subscriber received exactly one message. Three scenarios
(`_newsletter_scenarios`), each in a fresh interpreter on a fresh copy of the
database, measured by `_measure.Window`:

* **digest send**: ``Deliverer.plan`` then ``Deliverer.send`` with the real
  ``SmtpMailer`` (``mail.concurrency`` 4 connections, a rate limit that never
  waits), logging one line per delivery as ``feedsvc digest send`` does;
* **bare aiosmtplib**: the same messages, built beforehand with the same
  ``Composer.compose``, sent by ``SMTP.sendmail`` in a loop over one reused
  connection: the floor the digest send is held to;
* **digest send, topics** (issue 12): the digest send again, with every tenth
  subscriber following two topics (``_newsroom.TOPICS``), so those subscribers'
  digests are selected and rendered for their own (categories, topics). For
  information: what following topics costs; the first row is what everyone
  else costs.

They run in turns, ``runs`` times each; a row is the median run, with the
least and most CPU of its runs, and the target compares the medians.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import _newsroom
from bench._measure import Usage, median, run_isolated
from bench._report import Report, Row, Target, progress
from bench._smtp import smtp_server

_SCENARIOS = {
    "digest": "digest_scenario",
    "bare": "bare_smtp_scenario",
    "topics": "digest_scenario",
}
TOPIC_EVERY = 10  # every tenth subscriber follows topics in the "topics" scenario
_TIMEOUT_S = 1800  # a run sends 600 MB through aiosmtpd; on a busy machine that takes a while


@dataclass(frozen=True, slots=True)
class Plan:
    subscribers: int
    combinations: int
    categories: int
    entries: int  # new entries per category in the digest's day
    runs: int  # of each scenario, alternating
    digest_items: int = 14  # newsletter.max_items_per_category
    teaser_chars: int = 260  # summaries as long as a digest shows them (220 characters)


FULL = Plan(subscribers=10_000, combinations=20, categories=8, entries=20, runs=3)
QUICK = Plan(subscribers=500, combinations=20, categories=8, entries=20, runs=1)


@dataclass(frozen=True, slots=True)
class _Run:
    usage: Usage
    figures: dict[str, Any]


def run(quick: bool) -> Report:
    """Build the newsroom and its subscribers, then measure both scenarios."""
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        progress(f"newsletter: storing {plan.categories * plan.entries} entries")
        db = _newsroom.build(
            work, categories=plan.categories, entries=plan.entries, teaser_chars=plan.teaser_chars
        )
        progress(f"newsletter: adding {plan.subscribers} subscribers")
        _newsroom.add_subscribers(
            db,
            work,
            categories=plan.categories,
            total=plan.subscribers,
            combos=plan.combinations,
        )
        results = _measure_scenarios(plan, work, db)
    digest = _median(results["digest"])
    bare = _median(results["bare"])
    topics = _median(results["topics"])
    rows = [
        Row.of_runs(
            f"digest send, {plan.subscribers} subscribers", [r.usage for r in results["digest"]]
        ),
        Row.of_runs(
            "bare aiosmtplib, pre-built, one connection", [r.usage for r in results["bare"]]
        ),
        Row.of_runs(
            f"digest send, 1 in {TOPIC_EVERY} following 2 topics",
            [r.usage for r in results["topics"]],
        ),
    ]
    title = (
        f"newsletter: {plan.subscribers} subscribers, {plan.combinations} category "
        f"combinations, {plan.categories * plan.entries} new entries"
    )
    notes = [*_notes(plan, digest, bare), _topics_note(plan, digest, topics)]
    return Report(title, rows, _targets(digest, bare), notes)


def _measure_scenarios(plan: Plan, work: Path, db: Path) -> dict[str, list[_Run]]:
    """Every run of both scenarios, alternating so drift on the machine hits both alike."""
    combos = _newsroom.combinations(plan.categories, plan.combinations)
    addresses = {reader.email for reader in _newsroom.subscribers(plan.subscribers, combos)}
    results: dict[str, list[_Run]] = {name: [] for name in _SCENARIOS}
    for n in range(plan.runs):
        for name, function in _SCENARIOS.items():
            progress(f"newsletter: {name} ({n + 1}/{plan.runs})")
            copy = _newsroom.copy(db, work / f"{name}-{n}.db")
            if name == "topics":
                _newsroom.add_topics(copy, work, categories=plan.categories, every=TOPIC_EVERY)
            out = work / f"{name}-{n}.json"
            with smtp_server() as server:
                _newsroom.write_config(
                    work / f"{name}-{n}.yaml",
                    copy,
                    categories=plan.categories,
                    smtp_port=server.port,
                    digest_items=plan.digest_items,
                )
                params = {
                    "config": str(work / f"{name}-{n}.yaml"),
                    "out": str(out),
                    "subscribers": plan.subscribers,
                }
                usage = run_isolated(
                    f"bench._newsletter_scenarios:{function}", params, timeout=_TIMEOUT_S
                )
            server.check_each_once(addresses)
            figures = json.loads(out.read_text()) if out.exists() else {}
            results[name].append(_Run(usage, figures))
    return results


def _median(runs: list[_Run]) -> _Run:
    chosen = median([run.usage for run in runs])
    return next(run for run in runs if run.usage is chosen)


def _targets(digest: _Run, bare: _Run) -> list[Target]:
    d, b = digest.usage, bare.usage
    return [
        Target(
            "digest send / bare aiosmtplib (CPU/message)",
            d.cpu_s / b.cpu_s,
            1.5,
            "x",
            f"{d.cpu_s:.2f} s / {b.cpu_s:.2f} s for the same messages, medians",
        ),
        Target(
            "peak memory of the digest send (tree, PSS)",
            d.pss_peak_mb,
            300,
            "MB",
            f"sampled; the sending process's VmHWM {d.main_peak_mb:.0f} MB",
        ),
    ]


def _topics_note(plan: Plan, digest: _Run, topics: _Run) -> str:
    followers = -(-plan.subscribers // TOPIC_EVERY)
    extra = topics.usage.cpu_s - digest.usage.cpu_s
    return (
        f"topics (issue 12): {followers:,} of the {plan.subscribers:,} subscribers follow two "
        f"topics each (the pairs of {len(_newsroom.TOPICS)} in turn; every tenth subscriber "
        f"falls on 2 of the {plan.combinations} category combinations), so their digests are "
        f"selected and rendered per (categories, folded topics): the send took "
        f"{topics.usage.cpu_s:.2f} s CPU against {digest.usage.cpu_s:.2f} s without topics "
        f"(medians), {extra / followers * 1000:+.2f} ms per follower; compare the two rows' "
        "min-max before reading a difference into it. Subscribers without topics share the "
        "(categories, window) selection and its renders as before."
    )


def _notes(plan: Plan, digest: _Run, bare: _Run) -> list[str]:
    n = plan.subscribers
    d, b = digest.usage, bare.usage
    plan_cpu = digest.figures.get("plan_cpu_s", 0.0)
    build_cpu = bare.figures.get("build_cpu_s", 0.0)
    size = bare.figures.get("mean_bytes", 0.0)
    return [
        f"digest send: {n / d.wall_s:,.0f} messages/s, {d.cpu_s / n * 1000:.2f} ms CPU per "
        f"message, of which Deliverer.plan (creating {n:,} delivery rows) "
        f"{plan_cpu / n * 1000:.2f} ms; bare aiosmtplib: {n / b.wall_s:,.0f} messages/s, "
        f"{b.cpu_s / n * 1000:.2f} ms CPU per message; messages of {size / 1024:.0f} KB "
        "on average.",
        f"for information: selecting and composing the same messages alone (select_digest, "
        f"one render per variant, Composer.compose; the bare loop's setup) costs "
        f"{build_cpu / n * 1000:.2f} ms CPU per message.",
        "CPU = user + system of the sending process (its threads included), which logs one "
        "line per delivery to stderr as feedsvc digest send does; the SMTP server (aiosmtpd) "
        "runs in a process of its own. After each run the server's counts showed every "
        "subscriber received exactly one message.",
        f"{plan.combinations} variants: {plan.categories} categories with {plan.entries} new "
        f"entries each, {plan.combinations} combinations of one or two of them, every fifth "
        "read in English; the digest send renders each variant once.",
        "the bare loop's SMTP.sendmail runs aiosmtplib's regular expressions over each "
        "message (line endings, dot-stuffing) where SmtpMailer uses bytes.replace: that, "
        "not a shortcut in what is sent, is why the digest send can cost less per message "
        "than its floor. Outcomes are written with group commit (a few rows per "
        "transaction), each sender waiting for its own.",
        "the digest send opens mail.concurrency = 4 connections and reads and writes each "
        "delivery's rows in SQLite; the bare loop uses one connection and no database. Its "
        "memory holds all the pre-built messages at once (not a target).",
    ]
