"""Scorers that put a number on a model's output without a judge model of the suite's:
toxicity (alt-profanity-check, Detoxify, Perspective, any sequence classifier).

building.py builds one (the runner's services do); checks.py checks one can work (a task's
options, before any model loads); toxicity.py holds the specs and the protocol tasks use."""
