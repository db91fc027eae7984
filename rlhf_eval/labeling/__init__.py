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

Import from the modules: the package imports none of them, so that reading labels (the
reward_model task does) never loads Flask, whose request proxies make vLLM 0.32 fail to start
in the same process (its kernel registration probes every loaded module).
"""
