"""MinHash signatures and band keys: stable values a table keeps, and the Jaccard they estimate."""

from __future__ import annotations

import random

from feedsvc.stories import minhash


def signature(shingles: set[str]) -> tuple[int, ...]:
    return minhash.signature(minhash.hash64(s) for s in shingles)


def test_band_keys_are_the_same_in_every_process_and_release() -> None:
    # Stored keys must never move: a change here splits every stored cluster.
    sig = signature({"xoa nha", "nha tam", "ha tinh", "2343"})
    assert sig[:3] == (1417449392, 3057980919, 403545150)
    assert minhash.band_keys(sig)[:2] == (5099287361819437294, -1969563257039940017)
    assert minhash.hash64("ha tinh") == 18357519004864148046


def test_keys_fit_a_signed_bigint_one_per_band() -> None:
    keys = minhash.band_keys(signature({f"s{n}" for n in range(40)}))
    assert len(keys) == minhash.BANDS
    assert all(-(2**63) <= key < 2**63 for key in keys)


def test_an_empty_text_has_no_keys() -> None:
    assert minhash.band_keys(signature(set())) == ()


def test_order_and_repeats_do_not_matter() -> None:
    words = [f"s{n}" for n in range(30)]
    assert minhash.signature(map(minhash.hash64, words)) == minhash.signature(
        map(minhash.hash64, reversed(words + words))
    )


def test_the_estimate_follows_the_jaccard() -> None:
    rng = random.Random(7)
    errors = []
    for _ in range(200):
        pool = [f"w{rng.random()}" for _ in range(120)]
        a, b = set(pool[:80]), set(pool[40:])  # Jaccard 1/3
        errors.append(minhash.estimate_jaccard(signature(a), signature(b)) - 1 / 3)
    assert abs(sum(errors) / len(errors)) < 0.02
    assert max(map(abs, errors)) < 0.2


def test_similar_texts_share_a_band_and_unrelated_ones_rarely_do() -> None:
    rng = random.Random(3)
    shared = unrelated = 0
    for _ in range(200):
        common = {f"c{rng.random()}" for _ in range(20)}
        a = common | {f"a{rng.random()}" for _ in range(15)}
        b = common | {f"b{rng.random()}" for _ in range(15)}  # Jaccard 0.4
        c = {f"x{rng.random()}" for _ in range(35)}
        keys_a = set(minhash.band_keys(signature(a)))
        shared += bool(keys_a & set(minhash.band_keys(signature(b))))
        unrelated += bool(keys_a & set(minhash.band_keys(signature(c))))
    assert shared >= 190
    assert unrelated == 0
