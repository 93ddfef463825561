"""When a source needs an operator (ingest.alerts, pure): each row of its table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from feedsvc.ingest.alerts import Policy, decide, notice_due, quiet_after, silent
from feedsvc.model import (
    Incident,
    IncidentKind,
    NewIncident,
    NoteIncident,
    NoticeKind,
    OpenIncident,
    ResolveIncident,
    Source,
    SourceStatus,
)

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
POLICY = Policy(after=timedelta(hours=6))
HOUR = timedelta(hours=1)


def source(status: SourceStatus, *, polled: datetime = NOW, error: str | None = None) -> Source:
    return Source(
        "xa-hoi", "https://a/", "https://a/", status=status, last_error=error, last_polled_at=polled
    )


def incident(kind: IncidentKind, since: datetime, **changes: object) -> Incident:
    return replace(Incident(7, "xa-hoi", kind, since, since), **changes)  # type: ignore[arg-type]


def hourly(count: int, last: datetime) -> list[datetime]:
    return [last - HOUR * (count - 1 - n) for n in range(count)]


def test_a_first_failure_is_watched_not_opened() -> None:
    failing = source(SourceStatus.ERROR, error="HTTP 503")
    [change] = decide([failing], [], {}, POLICY, NOW)
    assert change == NewIncident("xa-hoi", IncidentKind.FAILING, NOW, "HTTP 503", opened=False)


def test_a_failure_that_lasts_alerts_after_opens() -> None:
    watched = incident(IncidentKind.FAILING, NOW - 5 * HOUR, last_error="HTTP 503")
    failing = source(SourceStatus.BACKOFF, error="HTTP 503")
    assert decide([failing], [watched], {}, POLICY, NOW) == []
    assert decide([failing], [watched], {}, POLICY, NOW + HOUR) == [OpenIncident(7)]


def test_a_new_error_is_noted() -> None:
    watched = incident(IncidentKind.FAILING, NOW - HOUR, last_error="HTTP 503", opened_at=NOW)
    failing = source(SourceStatus.BACKOFF, error="timed out")
    assert decide([failing], [watched], {}, POLICY, NOW) == [NoteIncident(7, "timed out")]


def test_410_opens_at_once_and_replaces_a_failure() -> None:
    gone = source(SourceStatus.RETIRED, error="HTTP 410 Gone")
    [new] = decide([gone], [], {}, POLICY, NOW)
    assert new == NewIncident("xa-hoi", IncidentKind.RETIRED, NOW, "HTTP 410 Gone", opened=True)
    watched = incident(IncidentKind.FAILING, NOW - HOUR)
    assert decide([gone], [watched], {}, POLICY, NOW) == [ResolveIncident(7, recovered=False), new]


def test_recovery_resolves_and_removal_resolves_quietly() -> None:
    watched = incident(IncidentKind.FAILING, NOW - HOUR)
    assert decide([source(SourceStatus.OK)], [watched], {}, POLICY, NOW) == [
        ResolveIncident(7, recovered=True)
    ]
    removed = replace(source(SourceStatus.ERROR), active=False)
    assert decide([removed], [watched], {}, POLICY, NOW) == [ResolveIncident(7, recovered=False)]


def test_a_new_source_has_no_verdict() -> None:
    watched = incident(IncidentKind.RETIRED, NOW - HOUR)
    assert decide([source(SourceStatus.NEW)], [watched], {}, POLICY, NOW) == []


def test_quiet_is_measured_against_the_sources_rhythm() -> None:
    assert quiet_after(hourly(4, NOW), POLICY) is None  # too little history
    assert quiet_after(hourly(30, NOW), POLICY) == timedelta(days=2)  # 4 hours, floored
    weekly = [NOW - timedelta(days=7 * n) for n in range(8)][::-1]
    assert quiet_after(weekly, POLICY) == timedelta(days=28)
    ok = source(SourceStatus.OK)
    history = {"xa-hoi": hourly(30, NOW - timedelta(days=2, minutes=1))}
    [quiet] = decide([ok], [], history, POLICY, NOW)
    assert quiet == NewIncident("xa-hoi", IncidentKind.QUIET, history["xa-hoi"][-1], None, True)
    assert decide([ok], [], {"xa-hoi": hourly(30, NOW - timedelta(days=1))}, POLICY, NOW) == []


def test_a_source_not_polled_since_it_became_overdue_is_not_quiet() -> None:
    """feedsvc itself was down for days: its sources look silent until polled again."""
    last = NOW - timedelta(days=4)
    before_the_outage = source(SourceStatus.OK, polled=last + HOUR)
    history = {"xa-hoi": hourly(30, last)}
    assert decide([before_the_outage], [], history, POLICY, NOW) == []
    polled_since = source(SourceStatus.OK, polled=NOW - HOUR)
    assert [c.kind for c in decide([polled_since], [], history, POLICY, NOW)] == [  # type: ignore[union-attr]
        IncidentKind.QUIET
    ]


def test_quiet_stays_as_it_is_when_the_history_was_not_read() -> None:
    quiet = incident(IncidentKind.QUIET, NOW - timedelta(days=3), opened_at=NOW)
    assert decide([source(SourceStatus.OK)], [quiet], None, POLICY, NOW) == []
    failing = incident(IncidentKind.FAILING, NOW - HOUR)
    assert decide([source(SourceStatus.OK)], [failing], None, POLICY, NOW) == [
        ResolveIncident(7, recovered=True)
    ]


def test_only_working_sources_silent_lately_need_their_history() -> None:
    sources = [
        replace(source(SourceStatus.OK), id="a"),
        replace(source(SourceStatus.OK), id="b"),
        replace(source(SourceStatus.ERROR), id="c"),
        replace(source(SourceStatus.OK), id="d", active=False),
    ]
    assert silent(sources, {"b"}) == ["a"]


def test_which_email_an_incident_owes() -> None:
    watched = incident(IncidentKind.FAILING, NOW)
    assert notice_due(watched) is None
    opened = replace(watched, opened_at=NOW)
    assert notice_due(opened) is NoticeKind.OPENED
    alerted = replace(opened, notified_at=NOW)
    assert notice_due(alerted) is None
    assert notice_due(replace(alerted, resolved_at=NOW, recovered=True)) is NoticeKind.RECOVERED
    assert notice_due(replace(alerted, resolved_at=NOW, recovered=False)) is None
    assert notice_due(replace(opened, resolved_at=NOW, recovered=True)) is None  # never alerted


def test_a_paused_source_neither_alerts_nor_recovers() -> None:
    watched = incident(IncidentKind.FAILING, NOW - 5 * HOUR, last_error="HTTP 503")
    paused = replace(source(SourceStatus.BACKOFF, error="HTTP 503"), paused_at=NOW - HOUR)
    assert decide([paused], [watched], {}, POLICY, NOW + HOUR) == []
    assert decide([replace(paused, status=SourceStatus.OK)], [watched], {}, POLICY, NOW) == []
