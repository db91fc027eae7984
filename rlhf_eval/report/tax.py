"""The alignment-tax table: each benchmark's policy - reference delta with its interval,
bootstrap p-value, Holm-adjusted p-value and a flag for significant regressions."""

from __future__ import annotations

from dataclasses import dataclass

from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.report.tables import format_ci, format_value
from rlhf_eval.results import ComparisonResult, Results

TAX_COLUMNS = (
    "benchmark",
    "metric",
    "reference",
    "policy",
    "delta [95% CI]",
    "p",
    "Holm p",
    "flag",
)
TAX_NOTE = (
    "delta = policy - reference on the items both answered, with the paired interval the "
    "results list as its method (passages kept together where questions share one); p: "
    "two-sided p-value of no difference from the same method; Holm p: adjusted across the "
    "suite's benchmarks (each task's headline metric, the first it lists); flag: regression / "
    "gain where Holm p < 1 - confidence."
)


@dataclass
class TaxTable:
    """The tax of one model against one reference model."""

    policy: str
    reference: str
    rows: list[Row]
    comparisons: list[ComparisonResult]


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def flag(comparison: ComparisonResult) -> str:
    """ "regression" or "gain" where the Holm-adjusted p-value is significant; "" otherwise."""
    c = comparison
    if c.p_holm is None or c.delta.point is None or c.p_holm >= 1 - c.delta.confidence:
        return ""
    if c.regression:
        return "regression"
    worse = c.delta.point < 0 if c.higher_is_better else c.delta.point > 0
    return "regression" if worse else ("gain" if c.delta.point != 0 else "")


def tax_tables(results: Results) -> list[TaxTable]:
    """One table per (policy, reference) pair, benchmarks in suite order."""
    order = {t.id: i for i, t in enumerate(results.tasks)}
    tax = [c for c in results.comparisons if c.against == "reference"]
    tables = []
    for policy, reference in dict.fromkeys((c.candidate, c.baseline) for c in tax):
        chosen = sorted(
            (c for c in tax if (c.candidate, c.baseline) == (policy, reference)),
            key=lambda c: order.get(c.task, len(order)),  # stable: metrics keep task order
        )
        rows = [
            {
                "benchmark": c.task,
                "metric": c.metric,
                "reference": format_value(c.baseline_point),
                "policy": format_value(c.candidate_point),
                "delta [95% CI]": f"{format_value(c.delta.point)} {format_ci(c.delta)}",
                "p": format_p(c.p_value),
                "Holm p": format_p(c.p_holm) if c.p_holm is not None else "",
                "flag": flag(c),
            }
            for c in chosen
        ]
        tables.append(TaxTable(policy, reference, rows, chosen))
    return tables


def tax_markdown(results: Results) -> list[str]:
    """The markdown section, or nothing when the suite has no `role: reference` model."""
    tables = tax_tables(results)
    if not tables:
        return []
    out = ["", "## Alignment tax (policy - reference, paired)", "", TAX_NOTE]
    for table in tables:
        out += ["", f"### {table.policy} - {table.reference}", ""]
        out.append(markdown_table(TAX_COLUMNS, table.rows))
    return out
