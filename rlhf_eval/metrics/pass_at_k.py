"""pass@k, the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models
Trained on Code", section 2.1): from n samples of which c pass,

    pass@k = 1 - C(n - c, k) / C(n, k),

the probability that at least one of k samples drawn without replacement from the n passes.
"""

from __future__ import annotations

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """The estimator in the paper's numerically stable product form (its figure 3):
    1 - prod_{i = n-c+1}^{n} (1 - k / i), which never forms the huge binomials."""
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n; got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n (the number of samples); got n={n}")
    if n - c < k:
        return 1.0  # every draw of k samples contains a passing one
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
