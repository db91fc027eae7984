"""Corpus-level statistics, each under the name results.json stores with its metric: `compare`
and `gate` rebuild a corpus metric of a stored run from that name, not from a task.

Each statistic is a formula over per-sample sufficient statistics summed over a set of samples
(records.CorpusStatistic), which is what lets the bootstrap resample samples cheaply and pair
two models on the same resampled indices.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlhf_eval.errors import RunError
from rlhf_eval.metrics.bleu import bleu_from_statistics, sentence_statistics
from rlhf_eval.metrics.reward_model import (
    calibration_statistics,
    ece_from_statistics,
    length_statistics,
    pearson_from_statistics,
)
from rlhf_eval.records import CorpusStatistic

BBH_SUBTASKS = (
    "boolean_expressions",
    "causal_judgement",
    "date_understanding",
    "disambiguation_qa",
    "dyck_languages",
    "formal_fallacies",
    "geometric_shapes",
    "hyperbaton",
    "logical_deduction_five_objects",
    "logical_deduction_seven_objects",
    "logical_deduction_three_objects",
    "movie_recommendation",
    "multistep_arithmetic_two",
    "navigate",
    "object_counting",
    "penguins_in_a_table",
    "reasoning_about_colored_objects",
    "ruin_names",
    "salient_translation_error_detection",
    "snarks",
    "sports_understanding",
    "temporal_sequences",
    "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects",
    "web_of_lies",
    "word_sorting",
)
"""BIG-Bench Hard's 27 subtasks, in the order of the macro average's statistics vector."""
BBH_INDEX = {name: i for i, name in enumerate(BBH_SUBTASKS)}


def _bleu_statistics(details: dict[str, Any]) -> np.ndarray:
    return sentence_statistics(details["hypothesis"], details["reference"])


def _bbh_statistics(details: dict[str, Any]) -> np.ndarray:
    """One-hot (correct, count): slot i holds the sample's correctness for subtask i, slot
    27 + i a 1 for its count."""
    row = np.zeros(2 * len(BBH_SUBTASKS))
    i = BBH_INDEX[details["subtask"]]
    row[i] = float(details["correct"])
    row[len(BBH_SUBTASKS) + i] = 1.0
    return row


def macro_average(sums: np.ndarray) -> np.ndarray:
    """Mean over the subtasks present (count > 0) of correct / count, per row of summed
    statistics (B, 54) -> (B,)."""
    correct, count = sums[:, : len(BBH_SUBTASKS)], sums[:, len(BBH_SUBTASKS) :]
    present = count > 0
    accuracy = np.where(present, correct / np.where(present, count, 1.0), 0.0)
    return accuracy.sum(axis=1) / present.sum(axis=1)


def _ece_statistics(details: dict[str, Any]) -> np.ndarray:
    return calibration_statistics(details["margins"], details["calibration_bins"])


def _absolute_correlation(sums: np.ndarray) -> np.ndarray:
    """|r|: a reward model without length bias has 0, whichever length the bias favours, so
    a smaller value is better in either direction."""
    return np.abs(pearson_from_statistics(sums))


CORPUS_BLEU = CorpusStatistic("corpus_bleu", _bleu_statistics, bleu_from_statistics)
BBH_MACRO_AVERAGE = CorpusStatistic(
    "bbh_macro_average", _bbh_statistics, macro_average, stratum=lambda d: d["subtask"]
)
CALIBRATION_ECE = CorpusStatistic("calibration_ece", _ece_statistics, ece_from_statistics)
ABS_LENGTH_CORRELATION = CorpusStatistic(
    "abs_length_correlation", length_statistics, _absolute_correlation
)
LENGTH_CORRELATION = CorpusStatistic(
    "length_correlation", length_statistics, pearson_from_statistics
)

CORPUS_STATISTICS = {
    s.name: s
    for s in (
        CORPUS_BLEU,
        BBH_MACRO_AVERAGE,
        CALIBRATION_ECE,
        ABS_LENGTH_CORRELATION,
        LENGTH_CORRELATION,
    )
}


def corpus_statistic(name: str) -> CorpusStatistic:
    """The statistic a stored corpus metric names."""
    try:
        return CORPUS_STATISTICS[name]
    except KeyError:
        raise RunError(
            f"corpus statistic '{name}' is not one this rlhf-eval knows "
            f"({', '.join(sorted(CORPUS_STATISTICS))}). Fix: use the rlhf-eval version that "
            "wrote the run."
        ) from None
