"""The digest window rule, in one place: which first-seen times a subscriber's next
digest covers. Pure: a subscriber's delivery history and the period in, a window out.

A digest covers the entries first seen in ``(since, until]``. ``until`` is the
period's time (a schedule's fire time, or the moment of a send "now"). ``since``
is where the subscriber's last delivered digest ended, so no story comes twice
and none is skipped:

- a digest that was sent, or found nothing new (``empty``), or may have been
  received (``unknown``) moves ``since`` on;
- a failed one does not: its entries come again in the next digest, so a
  subscriber whose every digest failed starts where the first one did;
- a first digest covers one schedule period back;
- while an earlier digest is still pending or sending there is no next one:
  the two windows would overlap, and the earlier one would send its stories a
  second time under another Message-ID. The next period after it closes covers
  from where it ended.

The *upcoming* window is the one that is building: from where the subscriber's
last digest (sent or still on its way) ends, up to now; the next fire time
closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from feedsvc.model import DeliveryHistory


@dataclass(frozen=True, slots=True)
class Window:
    """The first-seen times ``(since, until]`` one digest covers."""

    since: datetime
    until: datetime


def next_window(
    history: DeliveryHistory | None, previous: datetime, until: datetime
) -> Window | None:
    """The window of a subscriber's digest for the period ending at ``until``.

    Args:
        history: the subscriber's deliveries of this schedule (None: none yet).
        previous: the schedule's fire time before ``until`` (where a first digest starts).

    Returns:
        None while an earlier digest of the schedule is still open.
    """
    if history is None:
        return Window(min(previous, until), until)
    if history.open:
        return None
    since = history.delivered_until or history.first_since or previous
    return Window(min(since, until), until)


def upcoming_window(history: DeliveryHistory | None, latest: datetime, now: datetime) -> Window:
    """The window building now for the next fire time: what a preview or a test shows.

    Args:
        latest: the schedule's latest fire time at or before ``now``.
    """
    if history is None:
        since = latest
    elif history.open and history.open_until is not None:
        since = history.open_until
    else:
        since = history.delivered_until or history.first_since or latest
    return Window(min(since, now), now)
