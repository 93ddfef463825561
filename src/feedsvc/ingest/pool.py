"""The process pool that parses feeds, so both cores work while the event loop fetches.

Workers start from a clean forkserver (the parent has threads, which ``fork``
would copy half-way). They ignore SIGINT/SIGTERM, which reach the whole process
group: stopping is the parent's decision. And they exit when the parent dies,
even by ``kill -9``: otherwise a worker waits forever, since it holds the write
end of its own task queue and never sees end-of-file.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def parse_pool(workers: int | None = None) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["feedsvc.ingest.parse"])
    return ProcessPoolExecutor(
        max_workers=workers or os.cpu_count() or 2,
        mp_context=context,
        initializer=_start_worker,
        initargs=(os.getpid(),),
    )


def _start_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """Exit as soon as ``parent`` is gone (a pidfd says so at once; else poll each second)."""
    try:
        handle = os.pidfd_open(parent)
    except (AttributeError, OSError):
        while _alive(parent):
            time.sleep(1)
    else:
        select.select([handle], [], [])
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
