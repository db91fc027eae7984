"""The stratified bootstrap of corpus statistics: replicates keep every stratum's size."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_common.stats import bootstrap_statistic, paired_statistic_test


def recording(values: np.ndarray, seen: list[np.ndarray]):
    """statistic = the sum of the resampled values; remembers every block of indices."""

    def statistic(indices: np.ndarray) -> np.ndarray:
        seen.append(indices.copy())
        return values[indices].sum(axis=1)

    return statistic


def test_every_replicate_keeps_each_strata_size():
    strata = ["a"] * 3 + ["b"] * 5 + ["c"] * 2
    label = np.array(strata)
    seen: list[np.ndarray] = []
    bootstrap_statistic(recording(np.arange(10.0), seen), 10, iterations=500, strata=strata)
    resamples = np.concatenate(seen[1:])  # seen[0]: the point estimate on np.arange(n)
    assert len(resamples) == 500
    for stratum, size in (("a", 3), ("b", 5), ("c", 2)):
        # every drawn index of a stratum's slots comes from that stratum, and as many of them
        assert np.all((label[resamples] == stratum).sum(axis=1) == size)


def test_hand_checkable_two_strata():
    # Stratum A holds values 0 and 1, stratum B holds 5 and 5. Resampling within strata, B
    # always contributes 10 and A contributes 0, 1 or 2 with probabilities 1/4, 1/2, 1/4, so
    # the sum lies in {10, 11, 12} and its 95% percentile interval is exactly [10, 12]. The
    # plain bootstrap would also draw sums like 0 (all A) or 20 (all B).
    values = np.array([0.0, 1.0, 5.0, 5.0])
    seen: list[np.ndarray] = []
    estimate = bootstrap_statistic(
        recording(values, seen),
        4,
        iterations=4000,
        strata=["A", "A", "B", "B"],
        method="percentile",
    )
    sums = np.concatenate([values[block].sum(axis=1) for block in seen[1:]])
    assert set(np.unique(sums)) <= {10.0, 11.0, 12.0}
    shares = [np.mean(sums == v) for v in (10.0, 11.0, 12.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    assert (estimate.point, estimate.lo, estimate.hi) == (11.0, 10.0, 12.0)
    assert estimate.method == "percentile bootstrap (4000 resamples, stratified by 2 strata)"
    plain = bootstrap_statistic(
        lambda idx: values[idx].sum(axis=1), 4, iterations=4000, method="percentile"
    )
    assert plain.lo < 10.0 and plain.hi > 12.0


def test_a_single_stratum_is_the_plain_bootstrap_in_distribution():
    rng = np.random.default_rng(3)
    values = rng.normal(size=60)

    def mean(idx: np.ndarray) -> np.ndarray:
        return values[idx].mean(axis=1)

    one = bootstrap_statistic(mean, 60, iterations=20_000, strata=["s"] * 60)
    plain = bootstrap_statistic(mean, 60, iterations=20_000)
    assert one.lo == pytest.approx(plain.lo, abs=0.02)
    assert one.hi == pytest.approx(plain.hi, abs=0.02)


def test_strata_of_single_items_give_no_interval():
    estimate = bootstrap_statistic(lambda idx: idx.sum(axis=1), 3, strata=["a", "b", "c"])
    assert estimate.point == 3.0 and estimate.lo is None and estimate.hi is None


def test_clusters_are_drawn_within_their_stratum():
    # Clusters x, y in stratum A (sizes 1 and 2), z, w in stratum B: each replicate draws two
    # clusters from A and two from B, so stratum B's items always number 2 (z and w are
    # single items) while A's vary between 2 and 4 with the cluster sizes.
    clusters = ["x", "y", "y", "z", "w"]
    strata = ["A", "A", "A", "B", "B"]
    label = np.array(strata)
    seen: list[np.ndarray] = []
    bootstrap_statistic(
        recording(np.arange(5.0), seen), 5, iterations=300, clusters=clusters, strata=strata
    )
    rows = [row for block in seen[1:] for row in block]
    assert len(rows) == 300
    assert all((label[row] == "B").sum() == 2 for row in rows)
    assert {int((label[row] == "A").sum()) for row in rows} == {2, 3, 4}
    # y's two items always come together
    assert all((row == 1).sum() == (row == 2).sum() for row in rows)


def test_a_cluster_across_two_strata_is_rejected():
    with pytest.raises(ValueError, match="within one stratum"):
        bootstrap_statistic(
            lambda idx: idx.sum(axis=1), 3, clusters=["x", "x", "y"], strata=["A", "B", "B"]
        )


def test_strata_length_must_match():
    with pytest.raises(ValueError, match="one label per item"):
        bootstrap_statistic(lambda idx: idx.sum(axis=1), 3, strata=["A", "B"])


def test_paired_statistic_sees_the_same_stratified_indices():
    strata = ["A", "A", "B", "B", "B"]
    label = np.array(strata)
    a_seen: list[np.ndarray] = []
    b_seen: list[np.ndarray] = []
    test = paired_statistic_test(
        recording(np.arange(5.0) + 1.0, a_seen),
        recording(np.arange(5.0), b_seen),
        5,
        iterations=200,
        strata=strata,
    )
    # candidate - baseline = number of items, 5 in every replicate: a degenerate interval
    assert (test.delta.point, test.delta.lo, test.delta.hi) == (5.0, 5.0, 5.0)
    assert test.delta.method.endswith("stratified by 2 strata)")
    for a, b in zip(a_seen, b_seen, strict=True):
        np.testing.assert_array_equal(a, b)
    # a_seen[0]: the point on np.arange(n); a_seen[1]: each item alone (which items differ)
    assert a_seen[1].shape == (5, 1)
    assert all(np.all((label[block] == "A").sum(axis=1) == 2) for block in a_seen[2:])
