"""A generated dataset with the statistical shape of real rating data, for tests and benchmarks.

Real data has few very active users and few very popular items (power laws), every user and
item present at least once, and ratings that depend on user and item (so a model has
something to learn). This generator reproduces those properties deterministically from a
seed, fully vectorised, so an ML-10M-shaped matrix takes seconds instead of a download.
"""

from __future__ import annotations

import inspect

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import Interactions, RatingScale
from ncae_exp.errors import ConfigError

_BASE_TIME = 978_307_200  # 2001-01-01, seconds
_TIME_SPAN = 3 * 365 * 86_400


def generate_synthetic(
    n_users: int = 1000,
    n_items: int = 800,
    n_ratings: int = 40_000,
    rating_scale: tuple[float, float] = (1, 5),
    rating_step: float = 1.0,
    exponent: float = 1.0,
    rank: int = 8,
    noise: float = 0.5,
    seed: int = 0,
) -> Interactions:
    """``n_ratings`` distinct (user, item) pairs with Zipf-like activity and popularity
    (weight of the k-th most active user / popular item ∝ (k + 1)^-exponent; nobody rates
    more than half the items unless the density requires it), ratings from a rank-``rank``
    model plus user/item biases plus Gaussian noise (``noise`` relative to the signal's
    standard deviation), rounded onto the scale's steps, and timestamps spread over three
    years."""
    n_users, n_items, n_ratings, rank = _check(n_users, n_items, n_ratings, rank, exponent, noise)
    low, high, step = _check_scale(rating_scale, rating_step)
    rng = np.random.default_rng(seed)

    user_w = _zipf_weights(n_users, exponent, rng)
    item_w = _zipf_weights(n_items, exponent, rng)
    keys = _sample_pairs(n_users, n_items, n_ratings, user_w, item_w, rng)
    users, items = keys // n_items, keys % n_items

    ratings = _ratings(users, items, n_users, n_items, rank, noise, low, high, step, rng)
    stamps = _BASE_TIME + rng.integers(0, _TIME_SPAN, size=n_ratings, dtype=np.int64)

    counts = np.bincount(users, minlength=n_users)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    index_dtype = np.int32 if max(n_ratings, n_items) < 2**31 else np.int64
    matrix = sp.csr_matrix(
        (ratings, items.astype(index_dtype), indptr.astype(index_dtype)),
        shape=(n_users, n_items),
    )
    matrix.has_sorted_indices = True  # keys were sorted: row-major, ascending columns
    return Interactions(
        name="synthetic",
        matrix=matrix,
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        item_ids=np.arange(1, n_items + 1, dtype=np.int64),
        timestamps=stamps,
        rating_scale=RatingScale(low, high),
    )


def check_settings(**settings) -> None:
    """``generate_synthetic``'s arguments checked (defaults filled in), generating nothing."""
    args = inspect.signature(generate_synthetic).bind(**settings)
    args.apply_defaults()
    a = args.arguments
    _check(a["n_users"], a["n_items"], a["n_ratings"], a["rank"], a["exponent"], a["noise"])
    _check_scale(a["rating_scale"], a["rating_step"])


def _check(n_users, n_items, n_ratings, rank, exponent, noise) -> tuple[int, int, int, int]:
    sizes = {"n_users": n_users, "n_items": n_items, "n_ratings": n_ratings, "rank": rank}
    for key, value in sizes.items():
        try:
            ok = not isinstance(value, bool) and float(value).is_integer() and value >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"synthetic dataset: {key} must be a positive integer, got {value!r}")
    n_users, n_items, n_ratings, rank = (int(v) for v in sizes.values())
    if n_ratings > n_users * n_items:
        raise ConfigError(
            f"synthetic dataset: n_ratings={n_ratings} exceeds n_users*n_items={n_users * n_items}"
        )
    if n_ratings < max(n_users, n_items):
        raise ConfigError(
            f"synthetic dataset: n_ratings={n_ratings} is below max(n_users, n_items)="
            f"{max(n_users, n_items)}, so some user or item would have no rating"
        )
    for key, value in (("exponent", exponent), ("noise", noise)):
        try:
            ok = not isinstance(value, bool) and 0 <= float(value) < np.inf
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"synthetic dataset: {key} must be a number >= 0, got {value!r}")
    return n_users, n_items, n_ratings, rank


def _check_scale(rating_scale, rating_step) -> tuple[float, float, float]:
    try:
        low, high = (float(v) for v in rating_scale)
        step = float(rating_step)
    except (TypeError, ValueError):
        raise ConfigError(
            f"synthetic dataset: rating_scale must be [low, high] and rating_step a number,"
            f" got {rating_scale!r} and {rating_step!r}"
        ) from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ConfigError(f"synthetic dataset: rating_scale needs low < high, got {[low, high]}")
    n_steps = (high - low) / step if step > 0 else -1.0
    if not (n_steps >= 1 and abs(n_steps - round(n_steps)) < 1e-9):
        raise ConfigError(
            f"synthetic dataset: rating_step={step:g} must divide the scale {low:g}-{high:g}"
        )
    return low, high, step


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Normalised power-law weights, randomly assigned so ids say nothing about popularity."""
    w = (np.arange(n, dtype=np.float64) + 1.0) ** -exponent
    return rng.permutation(w / w.sum())


def _cover(n_users: int, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """max(M, N) distinct pairs touching every user and every item once or more."""
    n = max(n_users, n_items)
    perm = rng.permutation(n)
    users = np.arange(n) % n_users
    items = perm % n_items
    # if n == n_users the users are distinct, otherwise perm < n_items makes items distinct
    return _sorted_unique(users.astype(np.int64) * n_items + items)


def _sample_pairs(n_users, n_items, n_ratings, user_w, item_w, rng) -> np.ndarray:
    """Sorted keys ``user * n_items + item`` of exactly ``n_ratings`` distinct pairs.

    Each user's degree is fixed first (power law, capped at ``n_items``); then each user
    draws that many distinct items by popularity. Heavy users take an exact weighted sample
    without replacement (Gumbel top-k over their free items); light users, the vast
    majority, draw with replacement in vectorised rounds and keep their new items.
    """
    cover = _cover(n_users, n_items, rng)
    have = np.bincount(cover // n_items, minlength=n_users)
    # Nobody rates everything: cap activity at half the catalogue (MovieLens's most active
    # users rate 44-69% of it) unless the requested density leaves no room for that.
    cap = n_items if 4 * n_ratings > n_users * n_items else -(-n_items // 2)
    need = _degrees(user_w, have, np.maximum(cap, have), n_ratings) - have
    heavy = (need > 0) & (4 * (need + have) > n_items)
    parts = [cover]
    log_w = np.log(item_w)
    for u in np.flatnonzero(heavy):
        free = np.ones(n_items, dtype=bool)
        lo, hi = np.searchsorted(cover, [u * n_items, (u + 1) * n_items])
        free[cover[lo:hi] - u * n_items] = False
        cand = np.flatnonzero(free)
        score = log_w[cand] - np.log(-np.log(rng.random(cand.size)))
        parts.append(u * n_items + cand[np.argpartition(-score, need[u] - 1)[: need[u]]])
    need[heavy] = 0
    parts.append(_light_pairs(n_items, need, have, cover, item_w, rng))
    keys = np.sort(np.concatenate(parts))
    assert keys.size == n_ratings and (keys[1:] > keys[:-1]).all()
    return keys


def _degrees(weights: np.ndarray, low: np.ndarray, high: np.ndarray, total: int) -> np.ndarray:
    """Integer degrees ∝ ``weights``, clipped to [low, high], summing exactly to ``total``."""
    lo, hi = 0.0, float(high.max()) / weights.min()
    for _ in range(200):  # bisection on the scale factor
        mid = (lo + hi) / 2
        if np.clip(mid * weights, low, high).sum() <= total:
            lo = mid
        else:
            hi = mid
    cont = np.clip(lo * weights, low, high)
    deg = np.floor(cont).astype(np.int64)
    frac = cont - deg
    while (short := total - int(deg.sum())) > 0:  # hand out the rounding remainder
        room = np.flatnonzero(deg < high)
        pick = room[np.argsort(-frac[room], kind="stable")[:short]]
        deg[pick] += 1
        frac[pick] = 0.0
    return deg


def _light_pairs(n_items, need, have, cover, item_w, rng) -> np.ndarray:
    """Distinct new pairs, ``need[u]`` for each user, drawn by item popularity in rounds.

    Popular items saturate, so the draws are flattened towards uniform when few of them are
    new; every user here holds at most a quarter of the items, so uniform draws always make
    progress.
    """
    need = need.copy()
    taken_mass = np.bincount(cover // n_items, weights=item_w[cover % n_items], minlength=need.size)
    taken = have.astype(np.float64)
    known = cover
    found = []
    mix = 0.0
    while need.any():
        users = np.flatnonzero(need)
        p = (1 - mix) * item_w + mix / n_items
        free_mass = 1 - ((1 - mix) * taken_mass[users] + mix * taken[users] / n_items)
        draws = np.ceil(need[users] * 1.25 / np.maximum(free_mass, 0.05)).astype(np.int64) + 2
        u = np.repeat(users, draws)
        cdf = np.cumsum(p)
        i = np.searchsorted(cdf, rng.random(u.size) * cdf[-1], side="right")
        i = np.minimum(i, n_items - 1)
        keys = _sorted_unique(u * n_items + i)
        keys = keys[~_contains(known, keys)]
        # keep a random subset of at most need[u] new items per user
        ku = keys // n_items
        order = np.lexsort((rng.random(keys.size), ku))
        keys, ku = keys[order], ku[order]
        rank = np.arange(keys.size) - np.searchsorted(ku, ku, side="left")
        keep = rank < need[ku]
        keys, ku = np.sort(keys[keep]), ku[keep]
        got = np.bincount(ku, minlength=need.size)
        need -= got
        taken += got
        taken_mass += np.bincount(ku, weights=item_w[keys % n_items], minlength=need.size)
        known = np.sort(np.concatenate([known, keys]), kind="stable")  # merges two sorted runs
        found.append(keys)
        if keys.size < 0.1 * u.size:  # stalled on saturated popular items
            mix = min(1.0, mix + 0.25)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` without its hash path, which is several times slower on 10M int64 keys."""
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if a.size else a


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def _ratings(users, items, n_users, n_items, rank, noise, low, high, step, rng) -> np.ndarray:
    """Low-rank affinity + biases + noise, standardised and mapped onto the scale's grid
    (mean about 62% up the scale, sd about a quarter of it, like MovieLens)."""
    scale = rank ** -0.25  # each dot product then has unit variance
    p = rng.normal(0, scale, size=(n_users, rank)).astype(np.float32)
    q = rng.normal(0, scale, size=(n_items, rank)).astype(np.float32)
    bu = rng.normal(0, 0.5, size=n_users).astype(np.float32)
    bi = rng.normal(0, 0.5, size=n_items).astype(np.float32)
    signal_sd = np.sqrt(1.0 + 0.25 + 0.25)
    score = np.empty(users.size, dtype=np.float32)
    block = 1 << 20
    for s in range(0, users.size, block):  # bounded memory at ML-10M size
        u, i = users[s : s + block], items[s : s + block]
        score[s : s + block] = np.einsum("ij,ij->i", p[u], q[i]) + bu[u] + bi[i]
    score += rng.normal(0, noise * signal_sd, size=users.size).astype(np.float32)
    z = (score - score.mean()) / max(float(score.std()), 1e-12)
    target = low + 0.625 * (high - low) + 0.27 * (high - low) * z
    grid = np.clip(np.round((target - low) / step), 0, round((high - low) / step))
    return (low + grid * step).astype(np.float32)
