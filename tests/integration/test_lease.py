"""Lease owners name real processes: a dead one on this host is told from a live or a
remote one, and a heartbeat keeps the leases of work in flight."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

from feedsvc import lease
from feedsvc.lease import Heartbeat, Holder, Owner
from tests.conftest import NOW


def owner_of_a_process_that_exited() -> str:
    code = "from feedsvc.lease import process_owner; print(process_owner())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_an_owner_names_host_pid_and_start_time() -> None:
    owner = lease.process_owner()
    parsed = Owner.parse(owner)
    assert parsed is not None
    assert parsed.pid == os.getpid()
    assert parsed.start > 0
    assert len(owner) <= 64  # the lease_owner column
    assert lease.process_owner() != owner  # two senders in one process are two owners


def test_a_process_that_exited_is_dead_and_a_running_one_is_not() -> None:
    assert lease.is_dead(owner_of_a_process_that_exited())
    assert not lease.is_dead(lease.process_owner())


def test_a_reused_pid_is_not_the_process_that_took_the_lease() -> None:
    parsed = Owner.parse(lease.process_owner())
    assert parsed is not None
    impostor = f"{parsed.host}:{parsed.pid}:{parsed.start + 1}:00000000"  # same pid, later start
    assert lease.is_dead(impostor)


def test_other_hosts_and_old_names_are_never_declared_dead() -> None:
    assert not lease.is_dead("another-host:1:1:00000000")
    assert not lease.is_dead("web1:4242:3f9c1a2b")  # an owner written by an older version


def test_the_held_message_says_how_many_whose_and_until_when() -> None:
    holders = [Holder("another-host:77:5:00000000", 23, NOW + timedelta(minutes=2))]
    line = lease.describe(holders, ("delivery", "deliveries"))
    assert line.startswith("23 deliveries leased by another process (another-host pid 77, ")
    assert f"until {NOW.astimezone():%Y-%m-%d %H:%M:%S}"[:10] in line
    assert line.endswith("run again then, or with --wait")


async def test_a_heartbeat_renews_until_done_and_drops_what_was_taken() -> None:
    renewed: list[list[int]] = []

    async def renew(ids: list[int]) -> list[int]:
        renewed.append(sorted(ids))
        return [i for i in ids if i != 3]  # 3 was taken over by another process

    async with Heartbeat([1, 2, 3], renew, timedelta(milliseconds=50)) as beat:
        await asyncio.sleep(0.08)
        beat.done(1)
        await asyncio.sleep(0.1)
        beat.done(2)
        await asyncio.sleep(0.1)
    assert renewed[0] == [1, 2, 3]
    assert renewed[-1] == [2]
    assert beat.lost == {3}
