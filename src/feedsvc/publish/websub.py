"""WebSub publish pings: tell the hub which feed URLs changed, so subscribers hear at once.

A hub that is down must not lose a ping nor hold up polling: each URL is tried a
few times with growing pauses, and what still fails is logged and returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp

log = logging.getLogger("feedsvc.websub")

ATTEMPTS = 4
FIRST_PAUSE = 1.0


async def announce(
    hub: str,
    urls: Sequence[str],
    *,
    user_agent: str,
    attempts: int = ATTEMPTS,
    first_pause: float = FIRST_PAUSE,
) -> list[str]:
    """POST ``hub.mode=publish`` for each URL; return the URLs the hub never accepted."""
    if not urls:
        return []
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": user_agent}) as http:
        results = await asyncio.gather(
            *(_ping(http, hub, url, attempts, first_pause) for url in urls)
        )
    failed = [url for url, ok in zip(urls, results, strict=True) if not ok]
    level = logging.WARNING if failed else logging.INFO
    log.log(
        level, "websub", extra={"fields": {"hub": hub, "pinged": len(urls), "failed": len(failed)}}
    )
    return failed


async def _ping(
    http: aiohttp.ClientSession, hub: str, url: str, attempts: int, first_pause: float
) -> bool:
    pause = first_pause
    for attempt in range(1, attempts + 1):
        try:
            async with http.post(hub, data={"hub.mode": "publish", "hub.url": url}) as response:
                if 200 <= response.status < 300:
                    return True
                problem = f"HTTP {response.status}"
                if 400 <= response.status < 500 and response.status != 429:
                    break  # the hub refuses this URL; asking again will not help
        except (aiohttp.ClientError, TimeoutError) as exc:
            problem = str(exc) or type(exc).__name__
        log.info(
            "websub retry", extra={"fields": {"url": url, "attempt": attempt, "error": problem}}
        )
        if attempt < attempts:
            await asyncio.sleep(pause)
            pause *= 2
    log.warning("websub failed", extra={"fields": {"hub": hub, "url": url, "error": problem}})
    return False
