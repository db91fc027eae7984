"""Every capability metric (GSM8K, BBH, HumanEval) is a policy - reference paired delta in the
alignment-tax table and forest plot, and `rlhf-eval gate` gates any of them (pass@1 included).

Outputs come from the precomputed backend so the deltas are known: the reference answers every
item correctly; the policy answers GSM8K and HumanEval wrongly and BBH as the reference does.
"""

from __future__ import annotations

import json
from pathlib import Path

from rlhf_eval.cli import main
from rlhf_eval.report.plots import tax_forest
from rlhf_eval.report.tax import tax_tables
from rlhf_eval.store import RunDir
from rlhf_eval.tasks.base import registered_tasks
from tests.conftest import write_suite
from tests.tasks.helpers import FIXTURES, bbh_folder

TASKS = {
    "gsm8k": {"data": f"{FIXTURES}/gsm8k.jsonl"},
    "bbh": {"data": str(bbh_folder()), "subtasks": ["boolean_expressions", "date_understanding"]},
    "humaneval": {"data": f"{FIXTURES}/humaneval.jsonl", "max_workers": 1},
}

SUITE = """\
name: gates
output_dir: runs
cache_dir: cache
report_dir: report
stats: {{bootstrap_iterations: 300}}
models:
  - {{name: base, backend: precomputed, file: outputs.jsonl, role: reference}}
  - {{name: tuned, backend: precomputed, file: outputs.jsonl}}
tasks:
  - {{name: gsm8k, data: {gsm8k}}}
  - {{name: bbh, data: {bbh}, subtasks: [boolean_expressions, date_understanding]}}
  - {{name: humaneval, data: {humaneval}, max_workers: 1}}
gates:
  - {{metric: humaneval/pass@1, max_drop: 0.5}}
  - {{metric: bbh/exact_match_macro, max_drop: 0.0}}
"""


def write_outputs(path: Path) -> None:
    registry = registered_tasks()
    rows = []
    for name, options in TASKS.items():
        task = registry[name](registry[name].Options(**options), FIXTURES)
        for doc in task.documents():
            if name == "gsm8k":
                right, wrong = f"The answer is {doc.data['target']}.", "The answer is 123456."
            elif name == "bbh":
                right = wrong = f"So the answer is {doc.data['target']}."
            else:
                right, wrong = doc.data["canonical_solution"], "    return None\n"
            rows.append({"model": "base", "task": name, "id": doc.id, "output": right})
            rows.append({"model": "tuned", "task": name, "id": doc.id, "output": wrong})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_capability_deltas_are_in_the_tax_table_and_gateable(tmp_path, capsys):
    write_outputs(tmp_path / "outputs.jsonl")
    body = SUITE.format(**{name: options["data"] for name, options in TASKS.items()})
    suite = write_suite(tmp_path, body)
    assert main(["run", str(suite), "--no-progress"]) == 0
    run = tmp_path / "runs" / "gates"
    results = RunDir.open(run).results()

    tax = {(c.task, c.metric): c for c in results.comparisons if c.against == "reference"}
    assert set(tax) == {
        ("gsm8k", "exact_match"),
        ("gsm8k", "exact_match_strict"),
        ("bbh", "exact_match_macro"),
        ("bbh", "exact_match"),
        ("bbh", "answer_found"),
        ("humaneval", "pass@1"),
    }
    assert tax[("humaneval", "pass@1")].delta.point == -1.0
    assert tax[("gsm8k", "exact_match")].delta.point == -1.0
    assert tax[("bbh", "exact_match_macro")].delta.point == 0.0
    assert "stratified by 2 strata" in tax[("bbh", "exact_match_macro")].delta.method
    (table,) = tax_tables(results)
    assert {(r["benchmark"], r["metric"]) for r in table.rows} == set(tax)
    assert tax_forest(table.comparisons)  # the forest plot draws every row
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| humaneval | pass@1 |" in report

    capsys.readouterr()
    # The suite's gates: pass@1 dropped by 1 > 0.5, so the gate fails (exit 1).
    assert main(["gate", str(run)]) == 1
    printed = capsys.readouterr().out
    assert "humaneval/pass@1" in printed and "❌ FAIL" in printed
    assert "bbh/exact_match_macro" in printed and "✅ pass" in printed
    assert main(["gate", str(run), "--max-drop", "bbh/exact_match_macro=0"]) == 0
    assert main(["gate", str(run), "--max-drop", "pass@1=1.0"]) == 0
    assert main(["gate", str(run), "--max-drop", "gsm8k/exact_match=0.2"]) == 1
