"""When a source needs an operator: the decision, pure. It takes the sources as stored,
their history of new entries, the incidents not yet resolved and ``now``; it returns
what changes, as ``model.IncidentChange`` values that ``store.incidents`` applies.

=================================  =======================================================
the source                         its incident
=================================  =======================================================
its polls fail (error, backoff)    ``failing`` from the first failed poll seen; opened
                                   (worth an alert) once it lasts ``alerts.after``
answered 410 Gone (retired)        ``retired``, opened at once: one alert, not one a poll
polls work, but nothing new for    ``quiet``, opened at once. The rhythm is the median gap
far longer than its rhythm         between its new entries (their first-seen times, at
                                   most the last 30); "far longer" is ``quiet_factor``
                                   times that, and at least ``quiet_min``; and a poll
                                   after that found nothing new (not an outage of ours)
works, and has new entries again   resolved, recovered (a recovery email if its alert went)
has another problem now            resolved (not recovered); the new one starts
removed from config.yaml           resolved quietly
never polled yet (new)             no verdict: nothing changes
=================================  =======================================================

A source's first failure is dated by its ``last_polled_at`` when the incident is first
seen; the service looks after every poll, so that is the failed poll itself (a source
already failing when alerts were turned on counts from then).
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedsvc.config import Alerts
from feedsvc.model import (
    Incident,
    IncidentChange,
    IncidentKind,
    NewIncident,
    NoteIncident,
    NoticeKind,
    OpenIncident,
    ResolveIncident,
    Source,
    SourceStatus,
)

MIN_GAPS = 4  # a rhythm needs at least this many gaps between new entries
HISTORY = 30  # new-entry times per source that the rhythm is measured on

_FAILING = frozenset({SourceStatus.ERROR, SourceStatus.BACKOFF})


@dataclass(frozen=True, slots=True)
class Policy:
    """``alerts:`` as the decision needs it."""

    after: timedelta = timedelta(hours=6)
    quiet_factor: float = 4
    quiet_min: timedelta = timedelta(days=2)

    @classmethod
    def from_config(cls, alerts: Alerts) -> Policy:
        return cls(alerts.after, alerts.quiet_factor, alerts.quiet_min)


@dataclass(frozen=True, slots=True)
class Problem:
    kind: IncidentKind
    since: datetime
    error: str | None = None


def decide(
    sources: Sequence[Source],
    incidents: Sequence[Incident],
    arrivals: Mapping[str, Sequence[datetime]] | None,
    policy: Policy,
    now: datetime,
) -> list[IncidentChange]:
    """What changes now. ``arrivals`` holds the new-entry times (oldest first) of the
    sources :func:`silent` named (any other source published lately), or is None when
    they were not read this time: quiet incidents then stay as they are."""
    unresolved = {incident.source_id: incident for incident in incidents}
    actions: list[IncidentChange] = []
    for source in sources:
        incident = unresolved.get(source.id)
        if not source.active:
            if incident is not None:
                actions.append(ResolveIncident(incident.id, recovered=False))
            continue
        if source.status is SourceStatus.NEW:
            continue  # never polled (or its URL just changed): no verdict yet
        if source.paused_at is not None:
            continue  # the operator paused it: neither a new alert nor a false recovery
        if arrivals is None and source.status is SourceStatus.OK:
            if incident is not None and incident.kind is IncidentKind.QUIET:
                continue  # whether it is still quiet is not known this time
        problem = problem_of(source, arrivals.get(source.id, ()) if arrivals else (), policy, now)
        actions += _follow(source.id, incident, problem, policy, now)
    return actions


def problem_of(
    source: Source, arrivals: Sequence[datetime], policy: Policy, now: datetime
) -> Problem | None:
    """The source's problem now, if it has one."""
    polled = source.last_polled_at or now
    if source.status is SourceStatus.RETIRED:
        return Problem(IncidentKind.RETIRED, polled, source.last_error)
    if source.status in _FAILING:
        return Problem(IncidentKind.FAILING, polled, source.last_error)
    limit = quiet_after(arrivals, policy)
    # Quiet only if a poll after the source became overdue found nothing new: after an
    # outage of feedsvc itself, every source looks silent until it is polled again.
    if limit is not None and now - arrivals[-1] > limit and polled >= arrivals[-1] + limit:
        return Problem(IncidentKind.QUIET, arrivals[-1])
    return None


def silent(sources: Sequence[Source], published: Collection[str]) -> list[str]:
    """The sources whose history the quiet check needs: polled fine, yet not among those
    that ``published`` lately (within ``quiet_min``, the shortest quiet there is)."""
    working = (s for s in sources if s.active and s.status is SourceStatus.OK)
    return [source.id for source in working if source.id not in published]


def quiet_after(arrivals: Sequence[datetime], policy: Policy) -> timedelta | None:
    """How long without new entries is far longer than this source's rhythm (None: it
    has too little history to have one)."""
    recent = list(arrivals)[-HISTORY:]
    if len(recent) <= MIN_GAPS:
        return None
    gaps = [(b - a).total_seconds() for a, b in zip(recent, recent[1:], strict=False)]
    usual = timedelta(seconds=statistics.median(gaps))
    return max(usual * policy.quiet_factor, policy.quiet_min)


def _follow(
    source_id: str,
    incident: Incident | None,
    problem: Problem | None,
    policy: Policy,
    now: datetime,
) -> list[IncidentChange]:
    if incident is None:
        return [_new(source_id, problem, policy, now)] if problem else []
    if problem is None:
        return [ResolveIncident(incident.id, recovered=True)]
    if problem.kind is not incident.kind:
        return [
            ResolveIncident(incident.id, recovered=False),
            _new(source_id, problem, policy, now),
        ]
    actions: list[IncidentChange] = []
    if incident.opened_at is None and _due(Problem(incident.kind, incident.since), policy, now):
        actions.append(OpenIncident(incident.id))
    if problem.error != incident.last_error and problem.kind is not IncidentKind.QUIET:
        actions.append(NoteIncident(incident.id, problem.error))
    return actions


def _new(source_id: str, problem: Problem, policy: Policy, now: datetime) -> NewIncident:
    opened = _due(problem, policy, now)
    return NewIncident(source_id, problem.kind, problem.since, problem.error, opened)


def _due(problem: Problem, policy: Policy, now: datetime) -> bool:
    """Whether the problem is worth an alert: a failure only once it lasted ``after``."""
    return problem.kind is not IncidentKind.FAILING or now - problem.since >= policy.after


def notice_due(incident: Incident) -> NoticeKind | None:
    """The email an incident owes, if any: its alert once opened, then one on recovery."""
    if incident.notified_at is None:
        return NoticeKind.OPENED if incident.opened_at and not incident.resolved_at else None
    if incident.resolved_at and incident.recovered and not incident.recovery_notified_at:
        return NoticeKind.RECOVERED
    return None
