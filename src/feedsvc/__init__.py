"""feedsvc: polls source feeds, republishes them per category, and emails digests."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("feedsvc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
