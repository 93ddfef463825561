"""The one root of feedsvc's own exceptions.

::

    FeedsvcError
    ├── ConfigError        config.yaml is unreadable or invalid (carries every problem)
    ├── FetchError         one source could not be fetched; ``retry_after`` may say when to retry
    │   ├── BlockedAddress     a private/loopback address, or a scheme other than http(s)
    │   ├── TooLarge           the (decompressed) body passed ``fetch.max_bytes``
    │   ├── FetchTimeout       the whole fetch passed ``fetch.timeout``
    │   ├── TooManyRedirects   a redirect loop, or more hops than allowed
    │   ├── HTTPStatusError    the server answered an error status (4xx/5xx)
    │   │   └── Gone               410: the source is retired
    │   └── ConnectError       DNS, TCP or TLS failure
    ├── ParseError         the body is not a feed, or is hostile (entity declarations)
    ├── ConsentError       a consent action refused for an address: unknown, left, at its limit
    │                      (newsletter.consent)
    └── TokenError         a link token that cannot be trusted (newsletter.tokens)
        ├── InvalidToken       tampered, truncated, another purpose, or naming nobody
        └── ExpiredToken       genuine but too old for its purpose

Per-source failures are values in a ``PollResult``; these exceptions only travel
from the stage that detects them to the orchestrator that records them.
"""

from __future__ import annotations

from datetime import datetime


class FeedsvcError(Exception):
    """Base of every error feedsvc raises on purpose."""


class ConfigError(FeedsvcError):
    """config.yaml is invalid; ``problems`` holds one ``file:line: message`` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class FetchError(FeedsvcError):
    """A source could not be fetched."""

    retry_after: datetime | None = None


class BlockedAddress(FetchError):
    """The URL points at an address or scheme the configuration forbids."""


class TooLarge(FetchError):
    """The body grew past ``fetch.max_bytes`` after decompression."""


class FetchTimeout(FetchError):
    """The fetch did not finish within ``fetch.timeout``."""


class TooManyRedirects(FetchError):
    """A redirect loop, or a chain longer than the limit."""


class ConnectError(FetchError):
    """No connection could be made (DNS, TCP, TLS)."""


class HTTPStatusError(FetchError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str, retry_after: datetime | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Gone(HTTPStatusError):
    """410 Gone: the publisher retired the feed."""


class ParseError(FeedsvcError):
    """The body is not a usable feed."""
