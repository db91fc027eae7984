"""The one-page scorecard at the top of every report: for each policy model against its baseline,
one row per evaluation family the suite ran (preference, Likert, hallucination, TruthfulQA,
toxicity, bias, the alignment tax, capabilities, reward models, over-optimisation), with the
change, its 95% interval and a verdict, then the suite's gates. What a reader of a pull
request reads first."""

from __future__ import annotations

from dataclasses import dataclass

from rlhf_eval.errors import RunError
from rlhf_eval.gate import GateCheck, gate_checks
from rlhf_eval.manifest import Manifest
from rlhf_eval.markdown_tables import escape_cell
from rlhf_eval.results import ComparisonResult, Results

FAMILIES: dict[str, str] = {
    "win_rate": "Preference (win rate)",
    "alpaca_eval": "Preference (win rate)",
    "ratings/likert": "Likert (1-7)",
    "ratings/hallucination": "Hallucination",
    "truthfulqa_mc": "TruthfulQA",
    "truthfulqa_gen": "TruthfulQA",
    "realtoxicityprompts": "Toxicity",
    "winogender": "Bias",
    "crows_pairs": "Bias",
    **{
        name: "Alignment tax (public NLP)"
        for name in (
            "drop",
            "squad_v2",
            "wmt15_fr_en",
            "tldr",
            "cnn_dm",
            "quac",
            "hellaswag",
            "rte",
            "sst2",
            "wsc",
            "tydiqa_goldp",
        )
    },
    **{name: "Capabilities" for name in ("gsm8k", "bbh", "humaneval", "mmlu")},
    "reward_model": "Reward model",
    "best_of_n": "Over-optimisation (best-of-N gold reward)",
}
"""The family of a task (by its registered name), or of one of its metrics ("task/metric")."""
ORDER = list(dict.fromkeys(FAMILIES.values()))

VERDICTS = {"better": "better", "worse": "worse", "unresolved": "not resolved"}


@dataclass(frozen=True)
class Cell:
    """One policy's change on one row: candidate minus the model it is set against."""

    comparison: ComparisonResult

    @property
    def verdict(self) -> str:
        """better / worse when the 95% interval excludes no change, else not resolved."""
        d = self.comparison.delta
        if d.lo is None or d.hi is None or d.lo <= 0 <= d.hi:
            return VERDICTS["unresolved"]
        improved = (d.lo > 0) == self.comparison.higher_is_better
        return VERDICTS["better" if improved else "worse"]

    def text(self) -> str:
        d = self.comparison.delta
        if d.point is None:
            return "n/a"
        interval = "" if d.lo is None or d.hi is None else f" [{d.lo:+.3f}, {d.hi:+.3f}]"
        flag = " ⚠" if d.warning else ""
        return f"{d.point:+.3f}{interval}{flag} {self.verdict}"


@dataclass(frozen=True)
class Row:
    family: str
    entry: str
    metric: str
    higher_is_better: bool
    cells: dict[str, Cell]
    """By policy model."""


@dataclass(frozen=True)
class Scorecard:
    policies: list[str]
    against: dict[str, str]
    """Each policy's baseline (or, without one, its reference)."""
    rows: list[Row]
    gates: dict[str, list[GateCheck]]
    """The suite's gates checked for each policy against its baseline."""


def build_scorecard(results: Results, manifest: Manifest) -> Scorecard | None:
    """The scorecard, or None when the run holds no comparison of a policy model."""
    roles = {m.name: m.role for m in results.models}
    names = {t.id: t.name for t in results.tasks}
    chosen = _headline_comparisons(results, roles)
    if not chosen:
        return None
    policies = list(dict.fromkeys(c.candidate for c in chosen))
    keyed: dict[tuple[str, str, str], dict[str, Cell]] = {}
    for c in chosen:
        family = FAMILIES.get(f"{names.get(c.task)}/{c.metric}") or FAMILIES.get(
            names.get(c.task, "")
        )
        if family is not None:
            keyed.setdefault((family, c.task, c.metric), {})[c.candidate] = Cell(c)
    higher = {(c.task, c.metric): c.higher_is_better for c in chosen}
    rows = [
        Row(family, task, metric, higher[(task, metric)], cells)
        for (family, task, metric), cells in sorted(
            keyed.items(), key=lambda item: ORDER.index(item[0][0])
        )
    ]
    margins = {g.metric: g.max_drop for g in manifest.gates}
    gates = {}
    for policy in policies:
        mine = [c for c in results.comparisons if c.candidate == policy and c.against == "baseline"]
        try:
            gates[policy] = gate_checks(mine, margins) if margins and mine else []
        except RunError:  # a gate on a metric this policy was not compared on: not shown
            gates[policy] = []
    against = {c.candidate: c.baseline for c in chosen}
    return Scorecard(policies, against, rows, gates)


def _headline_comparisons(results: Results, roles: dict[str, str]) -> list[ComparisonResult]:
    """For each policy and task entry: its comparison with its baseline on the headline metric
    (plus Likert's hallucination rate); against a reference where the suite has no baseline."""
    firsts: dict[tuple[str, str, str], ComparisonResult] = {}
    for c in results.comparisons:
        if roles.get(c.candidate) != "policy":
            continue
        key = (c.candidate, c.task, c.against)
        if key not in firsts:
            firsts[key] = c
    extra = [
        c
        for c in results.comparisons
        if c.metric == "hallucination" and roles.get(c.candidate) == "policy"
    ]
    has_baseline = {c.candidate for c in firsts.values() if c.against == "baseline"}
    return [
        c
        for c in [*firsts.values(), *extra]
        if c.against == "baseline" or c.candidate not in has_baseline
    ]


SCORECARD_NOTE = (
    "Each policy against its baseline on each family's headline metric: the change (95% CI) and "
    "whether the interval resolves it (better / worse / not resolved; ⚠: the interval carries "
    "a warning, listed with the other warnings). ↑/↓: whether higher or lower is better."
)


def scorecard_header(card: Scorecard) -> list[str]:
    return ["family", "task entry / metric", *(f"{p} − {card.against[p]}" for p in card.policies)]


def scorecard_cells(card: Scorecard) -> list[list[tuple[str, str]]]:
    """Each row's cells as (text, verdict class); the family only where it starts."""
    out, previous = [], None
    for row in card.rows:
        arrow = "↑" if row.higher_is_better else "↓"
        cells = [
            (row.family if row.family != previous else "", ""),
            (f"{row.entry} / {row.metric} {arrow}", ""),
        ]
        previous = row.family
        for policy in card.policies:
            cell = row.cells.get(policy)
            cells.append((cell.text(), cell.verdict.replace(" ", "-")) if cell else ("", ""))
        out.append(cells)
    return out


def gate_lines(card: Scorecard) -> list[str]:
    """One line per policy with gates: PASS or FAIL, and each gated metric's worst drop."""
    lines = []
    for policy in card.policies:
        checks = card.gates.get(policy) or []
        if not checks:
            continue
        failed = [c for c in checks if not c.passed]
        verdict = "PASS" if not failed else f"FAIL ({len(failed)} of {len(checks)})"
        detail = "; ".join(
            f"{c.comparison.task}/{c.comparison.metric} worst drop {c.worst_drop:.3f} "
            f"(margin {c.max_drop:g})"
            for c in checks
            if c.worst_drop is not None
        )
        lines.append(f"Gate, {policy} against {card.against[policy]}: {verdict}: {detail}")
    return lines


def scorecard_markdown(card: Scorecard) -> list[str]:
    """The scorecard as markdown lines: the table, then each policy's gate verdict."""
    header = scorecard_header(card)
    lines = ["## Scorecard", "", SCORECARD_NOTE, ""]
    lines.append("| " + " | ".join(escape_cell(h) for h in header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for cells in scorecard_cells(card):
        lines.append("| " + " | ".join(escape_cell(text) for text, _ in cells) + " |")
    gates = gate_lines(card)
    if gates:
        lines += ["", *(f"- **{line.split(':')[0]}**:{line.split(':', 1)[1]}" for line in gates)]
    return lines
