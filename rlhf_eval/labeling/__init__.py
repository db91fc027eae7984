"""Human labels (`rlhf-eval label runs/<run>`): a local web app where named labelers score and
rank a run's outputs blind, stored in runs/<run>/labels.sqlite, exported as K-way rankings for
`rlhf-train rm` and summarised with the same preference statistics as the judges.

| module | responsibility |
|---|---|
| items.py | a run's prompts and outputs to label; the blind, seeded order per labeler |
| store.py | Label, the 11 metadata flags, and the SQLite store |
| app.py | the Flask app and its server (token on every URL) |
| command.py | what `rlhf-eval label` runs: serve, export or summarise |
| export.py | labels -> K-way rankings (`kway` format) |
| summary.py | win rate, Likert, flags, inter-annotator and judge-vs-human agreement |
"""

from rlhf_eval.labeling.app import create_app, make_label_server, serve
from rlhf_eval.labeling.command import label_command
from rlhf_eval.labeling.export import export_rankings, export_run_labels
from rlhf_eval.labeling.items import LabelingSet, display_order, load_labeling_set
from rlhf_eval.labeling.store import FLAGS, LABELS_FILE, Label, LabelStore
from rlhf_eval.labeling.summary import render_summary, summarize_labels, summarize_run_labels

__all__ = [
    "FLAGS",
    "LABELS_FILE",
    "Label",
    "LabelStore",
    "LabelingSet",
    "create_app",
    "display_order",
    "export_rankings",
    "export_run_labels",
    "label_command",
    "load_labeling_set",
    "make_label_server",
    "render_summary",
    "serve",
    "summarize_labels",
    "summarize_run_labels",
]
