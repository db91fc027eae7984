"""End to end on tiny models: every alignment-tax task, a reference and a policy model, the
tax comparisons with Holm-adjusted p-values, and the tax table in both reports."""

from __future__ import annotations

import sacrebleu

from rlhf_eval.cli import main
from rlhf_eval.store import RunDir
from tests.conftest import write_suite
from tests.tasks.helpers import FIXTURES

SUITE = f"""\
name: tax-e2e
output_dir: runs
cache_dir: cache
report_dir: report
stats:
  bootstrap_iterations: 500
models:
  - name: base
    path: {{reference}}
    role: reference
    batch_size: 8
  - name: chat
    path: {{policy}}
    chat_template: true
    batch_size: 8
tasks:
  - name: drop
    data: {FIXTURES}/drop.jsonl
    max_new_tokens: 6
  - name: drop
    id: drop_1shot
    data: {FIXTURES}/drop.jsonl
    num_fewshot: 1
    max_new_tokens: 6
  - name: squad_v2
    data: {FIXTURES}/squad.jsonl
    max_new_tokens: 6
  - name: wmt15_fr_en
    data: {FIXTURES}/wmt.jsonl
    max_new_tokens: 8
  - name: tldr
    data: {FIXTURES}/tldr.jsonl
    max_new_tokens: 8
  - name: cnn_dm
    data: {FIXTURES}/cnn_dm.jsonl
    max_new_tokens: 8
  - name: quac
    data: {FIXTURES}/quac.jsonl
    max_new_tokens: 6
  - name: wsc
    data: {FIXTURES}/wsc.jsonl
    max_new_tokens: 6
  - name: hellaswag
    data: {FIXTURES}/hellaswag.jsonl
  - name: rte
    data: {FIXTURES}/rte.jsonl
  - name: sst2
    data: {FIXTURES}/sst2.jsonl
"""
HEADLINES = {
    "drop": "drop_f1",
    "drop_1shot": "drop_f1",
    "squad_v2": "squad_f1",
    "wmt15_fr_en": "bleu",
    "tldr": "rouge_l",
    "cnn_dm": "rouge_l",
    "quac": "quac_f1",
    "wsc": "wsc_acc",
    "hellaswag": "hellaswag_acc_norm",
    "rte": "rte_acc",
    "sst2": "sst2_acc",
}


def test_alignment_tax_end_to_end(tmp_path, tiny_model_dir, other_tiny_model_dir):
    suite = write_suite(
        tmp_path, SUITE.format(reference=tiny_model_dir, policy=other_tiny_model_dir)
    )
    assert main(["run", str(suite), "--no-progress"]) == 0
    run = RunDir.open(tmp_path / "runs" / "tax-e2e")
    results = run.results()

    # Every metric of every task, for both models, with nothing failed.
    assert {(m.task, m.model) for m in results.metrics} == {
        (task, model) for task in HEADLINES for model in ("base", "chat")
    }
    assert all(m.n_failed == 0 for m in results.metrics)

    # Generations stop at the first newline, and the answer is what was scored.
    for task in ("drop", "squad_v2", "wmt15_fr_en", "tldr"):
        for sample in run.read_samples("chat", task):
            assert "\n" not in sample["prediction"] and sample["error"] is None

    # Corpus BLEU from the stored hypotheses is sacrebleu's.
    samples = run.read_samples("chat", "wmt15_fr_en")
    hyps = [s["details"]["hypothesis"] for s in samples]
    refs = [s["details"]["reference"] for s in samples]
    bleu = next(m for m in results.metrics if m.model == "chat" and m.metric == "bleu")
    assert abs(bleu.estimate.point - sacrebleu.corpus_bleu(hyps, [refs]).score) < 1e-9

    # One tax comparison per metric, policy - reference; Holm on each task's headline only.
    tax = [c for c in results.comparisons if c.against == "reference"]
    assert len(tax) == len(results.metrics) // 2
    assert all((c.candidate, c.baseline) == ("chat", "base") for c in tax)
    in_family = {(c.task, c.metric) for c in tax if c.p_holm is not None}
    assert in_family <= set(HEADLINES.items())
    for c in tax:
        if c.p_holm is not None:
            assert c.p_value <= c.p_holm <= 1
    squad = next(c for c in tax if c.metric == "squad_f1")
    assert "clustered by 2 groups" in squad.delta.method  # 5 questions on 2 paragraphs

    # The tax table in both reports.
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Alignment tax (policy - reference, paired)" in markdown
    assert "| drop_1shot | drop_f1 |" in markdown and "| wmt15_fr_en | bleu |" in markdown
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Alignment tax (policy - reference, paired)</h2>" in html
    assert "Alignment tax, chat - base" in html
