"""A run directory with generated outputs to label, written with RunDir (no model needed), the
labeling server on a free port, and headless Chromium."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rlhf_eval.manifest import Manifest, ModelRecord
from rlhf_eval.records import Sample
from rlhf_eval.run_settings import StatsSettings
from rlhf_eval.store import RunDir

TOKEN = "test-token-abc"
# Names that cannot turn up in the outputs' text, so a page that shows one has unblinded it.
MODELS = ("zebrasft", "quokkappo", "okapippoptx")
BASELINE = "zebrasft"
WORDS = ["cat", "dog", "sat", "on", "the", "mat", "ran", "fast", "good", "bad", "yes", "no"]


def prompt_text(i: int) -> str:
    return f"Q: question {i} about the {WORDS[i % len(WORDS)]}\nA:"


def output_text(model: str, i: int) -> str:
    words = WORDS[(i + MODELS.index(model) * 3) % len(WORDS) :][:4]
    return f"answer {MODELS.index(model) + 1} to {i}: " + " ".join(words)


def write_run(
    path: Path,
    n: int = 5,
    models: tuple[str, ...] = MODELS,
    task_id: str = "instructions",
    task_name: str = "instructions",
    extra_tasks: dict[str, str] | None = None,
    suite: str = "",
    closed: tuple[int, ...] = (),
) -> Path:
    """A run whose `task_id` entry holds one generated output per prompt and model."""
    run = RunDir.start(
        path,
        Manifest(
            fingerprint="test",
            suite_hash="test",
            task_versions={task_id: f"{task_name}@1", **(extra_tasks or {})},
            suite=suite,
            seed=7,
            stats=StatsSettings(confidence=0.95, bootstrap_iterations=2000),
            models=[
                ModelRecord(name=m, role="baseline" if m == BASELINE else "policy") for m in models
            ],
        ),
    )
    for model in models:
        run.append_samples(
            model,
            task_id,
            [
                Sample(
                    doc_id=f"p{i}",
                    prompt=prompt_text(i),
                    target=None,
                    prediction=output_text(model, i),
                    metrics={"output_tokens": 4.0},
                    details={"category": "qa", "closed_domain": i in closed},
                )
                for i in range(n)
            ],
        )
    return run.path


@pytest.fixture
def label_run(tmp_path) -> Path:
    return write_run(tmp_path / "runs" / "demo")


@pytest.fixture
def label_server(label_run):
    """(base URL with token, run path): the app served from a thread on a free port."""
    from rlhf_eval.labeling.app import make_label_server

    server, url = make_label_server(label_run, port=0, token=TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url, label_run
    server.shutdown()
    server.server_close()
    thread.join(5)


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
