"""Coverage of every interval method, and the gate's false-pass rate, by simulation.

Each cell draws data sets whose true value is known (rlhf_eval.intervals.simulation) and calls
the harness's own functions from rlhf_common.stats on each, with fixed seeds. Paired scenarios
put the truth at a drop of exactly the gate's margin (0.02), so a 95% gate should pass at most
2.5% of them. Paired 0/1 cells and single proportions are computed exactly (every outcome
weighed by its probability), the rest from SETS data sets (Monte Carlo SD of a 95% coverage:
0.35 points at 4,000 sets).

    OMP_NUM_THREADS=1 python benchmarks/coverage.py --write docs/statistics.md

prints the tables and, with --write, puts them between the coverage markers of that file.
It takes about ten minutes on one core.
"""

from __future__ import annotations

import argparse
import datetime
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rlhf_eval.intervals import simulation as sim

SETS = 4_000
ITERATIONS = 1_000
START, END = "<!-- coverage:start -->", "<!-- coverage:end -->"


def percent(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def cell_text(cell: sim.Cell, paired: bool) -> str:
    text = percent(cell.coverage)
    if paired and cell.false_pass is not None:
        text += f" / {percent(cell.false_pass)}"
    if cell.warned >= 0.005:
        text += f" (⚠{100 * cell.warned:.0f}%)"
    return text


def table(
    title: str,
    header: str,
    sizes: Sequence[int],
    rows: list[tuple[str, str, Callable[[int], sim.Cell]]],
    paired: bool,
) -> list[str]:
    """rows: (scenario, method, n -> Cell)."""
    columns = " | ".join(f"{header}={n}" if header else str(n) for n in sizes)
    out = [f"#### {title}", "", f"| scenario | method | {columns} |"]
    out.append("|---|---|" + "---:|" * len(sizes))
    for scenario, method, run in rows:
        started = time.perf_counter()
        cells = [cell_text(run(n), paired) for n in sizes]
        out.append(f"| {scenario} | {method} | " + " | ".join(cells) + " |")
        print(f"  {scenario} / {method}: {time.perf_counter() - started:.1f} s", flush=True)
    return out + [""]


def monte_carlo(scenario: sim.Scenario, method: sim.Method, sets: int | None = None):
    return lambda n: sim.simulate(scenario, method, n, sets or SETS, seed=1000 + n)


MEAN_LABELS = {
    "percentile": "percentile (old default)",
    "expanded": "expanded percentile",
    "bca": "BCa",
    "studentized": "studentized",
    "t": "t interval",
    "auto": "**default** (studentized; expanded if unbounded)",
}


def paired_binary_tables() -> list[str]:
    sizes = (20, 30, 50, 100, 500)
    rows = []
    for name, scenario in sim.PAIRED_BINARY.items():
        rows.append((name, "paired percentile (old)", lambda n, s=scenario: _old_percentile(s, n)))
        rows.append(
            (
                name,
                "**Tango score** (default)",
                lambda n, s=scenario: sim.paired_binary_exact(s, sim.tango, n),
            )
        )
    return table("Paired 0/1 metrics (exact): coverage / gate false-pass %", "n", sizes, rows, True)


def _old_percentile(scenario: sim.PairedBinary, n: int) -> sim.Cell:
    return sim.paired_binary_exact(scenario, sim.paired_percentile(ITERATIONS), n)


def paired_continuous_tables() -> list[str]:
    sizes = (20, 30, 50, 100, 200)
    rows = []
    for scenario in (sim.mc2_like(0.9), sim.skewed_drops(), sim.sparse_difference(0.1)):
        for method in ("percentile", "expanded", "bca", "t", "studentized", "auto"):
            rows.append(
                (
                    scenario.name,
                    MEAN_LABELS[method],
                    monte_carlo(scenario, sim.paired_mean_method(method, ITERATIONS)),
                )
            )
    return table(
        "Paired continuous metrics: coverage / gate false-pass % (⚠: share warned)",
        "n",
        sizes,
        rows,
        True,
    )


def mean_tables() -> list[str]:
    sizes = (20, 30, 50, 100)
    rows = []
    for scenario in sim.MEANS.values():
        for method in ("percentile", "expanded", "bca", "t", "auto"):
            rows.append(
                (
                    scenario.name,
                    MEAN_LABELS[method],
                    monte_carlo(scenario, sim.mean_method(method, ITERATIONS)),
                )
            )
    return table("One model's mean: coverage % (⚠: share warned)", "n", sizes, rows, False)


def clustered_tables() -> list[str]:
    sizes = (10, 20, 30, 50, 100)
    rows = []
    scenario = sim.clustered_normal(0.3)
    labels = {
        "percentile": "percentile (old default)",
        "bca": "BCa",
        "t": "cluster-robust t",
        "auto": "**expanded percentile** (default)",
    }
    for method, label in labels.items():
        rows.append(
            (scenario.name, label, monte_carlo(scenario, sim.mean_method(method, ITERATIONS)))
        )
    for p in (0.02, 0.1, 0.3):
        scenario = sim.clustered_binary(p, 0.2)
        rows.append(
            (
                scenario.name,
                "cluster percentile (old default)",
                monte_carlo(scenario, sim.mean_method("percentile", ITERATIONS)),
            )
        )
        rows.append(
            (
                scenario.name,
                "**design-effect Wilson / Clopper-Pearson** (default)",
                monte_carlo(scenario, sim.clustered_proportion),
            )
        )
    out = table(
        "Clustered items, n = clusters of 1 + Poisson(4) items: coverage % (⚠: share warned)",
        "G",
        sizes,
        rows,
        False,
    )
    rows = []
    for q10, q01 in ((0.04, 0.06), (0.01, 0.03), (0.0, 0.02)):
        scenario = sim.clustered_paired_binary(q10, q01, 0.2)
        rows.append(
            (
                scenario.name,
                "cluster percentile (old)",
                monte_carlo(scenario, sim.clustered_paired_method("percentile", ITERATIONS)),
            )
        )
        rows.append(
            (
                scenario.name,
                "**Tango with design effect** (default)",
                monte_carlo(scenario, sim.clustered_paired_method("tango", ITERATIONS)),
            )
        )
    return out + table(
        "Clustered paired 0/1 metrics: coverage / gate false-pass % (⚠: share warned)",
        "G",
        sizes,
        rows,
        True,
    )


def corpus_tables() -> list[str]:
    bleu, score = sim.bleu_corpus()
    out = table(
        "Corpus BLEU: coverage %",
        "n",
        (30, 50, 100),
        [
            (
                bleu.name,
                "percentile (old default)",
                monte_carlo(bleu, sim.statistic_method("percentile", ITERATIONS, score)),
            ),
            (
                bleu.name,
                "**expanded percentile** (default)",
                monte_carlo(bleu, sim.statistic_method("expanded", ITERATIONS, score)),
            ),
        ],
        False,
    )
    rows = []
    for per in (5, 10, 20):
        scenario = sim.bbh_strata(per)
        for method, label in (
            ("percentile", "percentile (old default)"),
            ("expanded", "**expanded percentile** (default)"),
        ):
            rows.append(
                (
                    f"{per} per subtask",
                    label,
                    lambda n, s=scenario, m=method, k=per: sim.simulate(
                        s, sim.statistic_method(m, ITERATIONS), 0, min(SETS, 2000), seed=k
                    ),
                )
            )
    out += table("BBH-like macro average (2,000 sets): coverage %", "", ("27 strata",), rows, False)
    lc = sim.lc_win_rate()
    out += table(
        "Length-controlled win rate (1,000 sets, 500 resamples): coverage %",
        "n",
        (30, 50, 100),
        [
            (
                lc.name,
                "percentile (old default)",
                monte_carlo(lc, sim.lc_method("percentile", 500), 1000),
            ),
            (
                lc.name,
                "**expanded percentile** (default)",
                monte_carlo(lc, sim.lc_method("expanded", 500), 1000),
            ),
        ],
        False,
    )
    return out


def proportion_tables() -> list[str]:
    rare = np.linspace(0.001, 0.05, 200)
    common = np.linspace(0.05, 0.5, 200)
    out = [
        "#### One proportion (exact): coverage % over p, min / mean",
        "",
        "| method | n | p in [0.001, 0.05): min / mean | p in [0.05, 0.5]: min / mean |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "wilson": "Wilson (old default)",
        "clopper-pearson": "Clopper-Pearson",
        "default": "**Wilson, Clopper-Pearson below 5** (default)",
    }
    for rule, label in labels.items():
        for n in (20, 30, 50, 100, 500):
            a, b = sim.binomial_coverage(rule, n, rare), sim.binomial_coverage(rule, n, common)
            rare_text = f"{percent(a.min())} / {percent(a.mean())}"
            common_text = f"{percent(b.min())} / {percent(b.mean())}"
            out.append(f"| {label} | {n} | {rare_text} | {common_text} |")
    return out + [""]


def holm_tables() -> list[str]:
    out = [
        "#### Holm across 4 headline metrics, normal paired differences, no true difference: "
        "family-wise error % (4,000 families; nominal 5)",
        "",
        "| method | n=30 | n=100 |",
        "|---|---:|---:|",
    ]
    for method in ("percentile", "expanded", "t", "auto"):
        errors = [sim.holm_family_error(method, n, 4, SETS, ITERATIONS, seed=7) for n in (30, 100)]
        out.append(f"| {MEAN_LABELS[method]} | {percent(errors[0])} | {percent(errors[1])} |")
    return out + [""]


SECTIONS = {
    "paired-binary": paired_binary_tables,
    "paired-continuous": paired_continuous_tables,
    "means": mean_tables,
    "clustered": clustered_tables,
    "proportions": proportion_tables,
    "corpus": corpus_tables,
    "holm": holm_tables,
}


def main() -> None:
    global SETS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="replace the coverage section of this file")
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="run these sections")
    parser.add_argument("--sets", type=int, default=SETS, help="data sets per cell (smoke runs)")
    args = parser.parse_args()
    if args.write and (args.only or args.sets != SETS):
        parser.error("--write records the full table: drop --only and --sets")
    SETS = args.sets
    started = time.perf_counter()
    lines = [
        f"Measured {datetime.date.today().isoformat()} with `OMP_NUM_THREADS=1 python "
        f"benchmarks/coverage.py --write docs/statistics.md` ({SETS:,} data sets per Monte "
        f"Carlo cell, {ITERATIONS:,} resamples; exact cells enumerate every outcome).",
        "",
    ]
    for name, build in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        print(f"{name}:", flush=True)
        lines += build()
    minutes = (time.perf_counter() - started) / 60
    lines.append(f"_{minutes:.1f} minutes on one core._")
    text = "\n".join(lines)
    print(text)
    if args.write:
        document = args.write.read_text()
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        if not pattern.search(document):
            raise SystemExit(f"{args.write} has no {START} ... {END} section to replace")
        args.write.write_text(pattern.sub(lambda _: f"{START}\n{text}\n{END}", document))


if __name__ == "__main__":
    main()
