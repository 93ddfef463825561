"""MinHash signatures and LSH band keys that a database table can hold.

Band keys are stored (``story_bands``) and compared across processes,
machines and releases, so everything that produces them is defined here in a
few lines over a standard hash (BLAKE2b), not by a library's defaults or a
random generator's stream: datasketch 2.0 changed its default permutation
scheme, which changes every hash value, and a store filled by one version
would silently stop agreeing with a process running the other. ``SCHEME``
seeds every constant, so a deliberate change gives new keys instead of
keys that half match the old ones.

The signature is one-permutation MinHash (Li, Owen and Zhang, 2012) densified
by rotation (Shrivastava and Li, 2014): each shingle is hashed once, the hash
picks one of ``BINS`` bins and the bin keeps the smallest value; an empty bin
takes the value of the next non-empty bin to its right, shifted by the
distance. Two sets agree on a bin with probability equal to their Jaccard
similarity, as with ``BINS`` independent permutations, for one hash per
shingle instead of ``BINS`` of them. A band takes ``ROWS`` bins spread
``BANDS`` apart, not neighbours, so that one borrowed run rarely fills a whole
band.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache, lru_cache

SCHEME = "feedsvc-oph-1"
BINS = 128
ROWS = 2  # bins per band: two sets share a band with probability about J**ROWS
BANDS = BINS // ROWS
_MASK = BINS - 1
_MASK32 = (1 << 32) - 1
_MASK64 = (1 << 64) - 1
_SHIFT = 0x9E3779B9  # added per bin of distance when a bin borrows (odd, 32-bit)
_blake2b = hashlib.blake2b


@lru_cache(maxsize=1 << 18)
def hash64(text: str) -> int:
    """A stable unsigned 64-bit hash of ``text`` (BLAKE2b), the same in every process.

    Cached: syllables and their pairs recur from one entry to the next.
    """
    return int.from_bytes(_blake2b(text.encode(), digest_size=8).digest(), "little")


def signature(hashes: Iterable[int]) -> tuple[int, ...]:
    """The ``BINS`` 32-bit MinHash values of a set of shingles, or () for an empty set.

    Args:
        hashes: the shingles' ``hash64`` values (hashed once by the caller,
            which keeps them for its own use too).
    """
    bins: dict[int, int] = {}
    for h in hashes:
        index, value = h & _MASK, h >> 32
        if value < bins.get(index, 1 << 32):
            bins[index] = value
    if not bins:
        return ()
    values = [0] * BINS
    donor, distance = 0, 0
    for index in range(2 * BINS - 1, -1, -1):  # right to left, twice round the circle
        found = bins.get(index & _MASK)
        if found is not None:
            donor, distance = found, 0
        else:
            distance += 1
        if index < BINS:
            values[index] = (donor + distance * _SHIFT) & _MASK32
    return tuple(values)


def band_keys(values: tuple[int, ...]) -> tuple[int, ...]:
    """One signed 64-bit key per band of a signature: the values a BIGINT column holds.

    Two signatures share band ``b``'s key exactly when they agree on its
    ``ROWS`` bins (``b``, ``b + BANDS``, …). The 32-bit values are already
    uniform hash outputs, so the key needs no second hash: the rows are packed
    side by side, mixed with the band's constant and multiplied by its odd
    multiplier (both bijections of 64-bit words), so equal values in
    different bands give different keys.
    """
    if not values:
        return ()
    keys = []
    for band, (seed, multiplier) in enumerate(_band_constants()):
        packed = 0
        for row in range(ROWS):
            packed = (packed << 32) | values[band + row * BANDS]
        key = ((packed ^ seed) * multiplier) & _MASK64
        keys.append(key - (1 << 64) if key >> 63 else key)
    return tuple(keys)


def estimate_jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """The share of bins on which two signatures agree: an estimate of their Jaccard."""
    if not a or not b:
        return 0.0
    return sum(x == y for x, y in zip(a, b, strict=True)) / BINS


@cache
def _band_constants() -> tuple[tuple[int, int], ...]:
    """Per band: a 64-bit seed and an odd 64-bit multiplier, fixed by ``SCHEME``."""
    return tuple(
        (hash64(f"{SCHEME}:seed:{band}"), hash64(f"{SCHEME}:multiplier:{band}") | 1)
        for band in range(BANDS)
    )
