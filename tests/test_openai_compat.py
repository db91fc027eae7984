"""The OpenAI-compatible backend against a real llama-cpp-python server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.model_loading import load_backend
from rlhf_eval.models.openai_compat import EchoedPrompt, OpenAICompatBackend, RateLimiter
from rlhf_eval.models.spec import OpenAISpec
from rlhf_eval.records import GenerationRequest, LoglikelihoodRequest

ALIAS = "smollm2-135m-instruct"
SERVED = "smollm2"
STARTUP_S = 180

# Multiple-choice style requests: three questions, three continuations each.
CHOICES = [
    LoglikelihoodRequest(f"Question: {q}\nAnswer:", f" {c}")
    for q, options in (
        ("What is the capital of France?", ("Paris.", "Berlin.", "A banana.")),
        ("How many legs does a spider have?", ("Eight.", "Three.", "Blue.")),
        ("What colour is the sky on a clear day?", ("Blue.", "Green.", "Loud.")),
    )
    for c in options
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(gguf: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", SERVED,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "2", "--logits_all", "true", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    pytest.fail(f"llama_cpp.server not ready after {STARTUP_S} s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def gguf() -> Path:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as error:
        reason = f"llama-cpp-python is not installed ({error}); see the Makefile's setup"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    from rlhf_common.model_aliases import gguf_path

    return gguf_path(ALIAS)


@pytest.fixture(scope="session")
def server(gguf, tmp_path_factory) -> str:
    """The GGUF as llama-cpp-python serves it by default (SmolLM2 adds no BOS token)."""
    process, url = start_server(gguf, tmp_path_factory.mktemp("server") / "log")
    yield url
    stop_server(process)


@pytest.fixture(scope="session")
def bos_server(gguf, tmp_path_factory) -> str:
    """The same GGUF told to start prompts with BOS, which llama-cpp-python aligns correctly."""
    override = "tokenizer.ggml.add_bos_token=bool:true"
    log = tmp_path_factory.mktemp("bos_server") / "log"
    process, url = start_server(gguf, log, "--kv_overrides", override)
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def hf_backend():
    from rlhf_common.model_aliases import resolve_alias
    from rlhf_eval.models.hf import HFBackend

    backend = HFBackend("hf", str(resolve_alias(ALIAS)))
    yield backend
    backend.close()


@pytest.mark.slow
def test_generation_returns_text_and_respects_stop(server):
    backend = OpenAICompatBackend("llama", server, SERVED, max_concurrency=2)
    assert backend.identity == f"openai:{server}:{SERVED}"
    prompt = "Count with me: one, two, three,"
    free, stopped, sampled = backend.generate(
        [
            GenerationRequest(prompt, max_new_tokens=24),
            # Four stops go to the server; the fifth (",") is cut on our side.
            GenerationRequest(prompt, max_new_tokens=24, stop=("#a", "#b", "#c", "#d", ",")),
            GenerationRequest(prompt, max_new_tokens=8, temperature=1.0, n=2, seed=3),
        ]
    )
    assert free.texts[0].strip() and free.n_tokens[0] > 0
    assert "," in free.texts[0], "the test needs a completion that goes on counting"
    assert stopped.texts[0] == free.texts[0][: free.texts[0].index(",")]
    assert len(sampled.texts) == 2 and all(n > 0 for n in sampled.n_tokens)


@pytest.mark.slow
def test_shift_detection_fires_on_llama_cpp_python(server):
    backend = OpenAICompatBackend("llama", server, SERVED)
    with pytest.raises(ModelLoadError, match="shifted by one token") as caught:
        backend.loglikelihood(CHOICES[:1])
    assert server in str(caught.value) and "#1983" in str(caught.value)


def echoed_logprobs(url: str, prompt: str) -> tuple[list[str], list[float | None]]:
    body = {"model": SERVED, "prompt": prompt, "echo": True, "logprobs": 1, "max_tokens": 1}
    request = urllib.request.Request(
        url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        logprobs = json.loads(response.read())["choices"][0]["logprobs"]
    keep = sum(offset < len(prompt) for offset in logprobs["text_offset"])
    return logprobs["tokens"][:keep], logprobs["token_logprobs"][:keep]


@pytest.mark.slow
def test_what_the_shift_is(server, hf_backend):
    """The raw echoed value at token j is log p(token j | tokens 0..j): the distribution
    *after* token j, scored at token j. The right value is log p(token j | tokens 0..j-1)."""
    import torch
    import torch.nn.functional as F

    prompt = "Question: How many legs does a spider have?\nAnswer: Eight legs."
    tokens, served = echoed_logprobs(server, prompt)
    ids = hf_backend.tokenizer.encode(prompt)
    assert [hf_backend.tokenizer.decode([i]) for i in ids] == tokens
    with torch.no_grad():
        logprobs = F.log_softmax(hf_backend.model(torch.tensor([ids])).logits[0].float(), -1)
    aligned = [logprobs[j - 1, ids[j]].item() for j in range(1, len(ids))]
    shifted = [logprobs[j, ids[j]].item() for j in range(1, len(ids))]
    error_aligned = sum(abs(s - a) for s, a in zip(served[1:], aligned, strict=True))
    error_shifted = sum(abs(s - a) for s, a in zip(served[1:], shifted, strict=True))
    n = len(ids) - 1
    # Seen: 0.16 nats per token off the shifted reading (quantisation noise, up to 0.5 on
    # tokens at -13 nats) and about 7 off the aligned one.
    assert served[0] is None
    assert error_shifted / n < 0.3 and error_aligned > 10 * error_shifted


@pytest.mark.slow
def test_loglikelihood_close_to_hf(bos_server, hf_backend):
    """A BOS-adding server is aligned, so the probe passes and the numbers match HF's on the
    same BOS-prefixed text. They match to a tolerance, not exactly: the GGUF holds Q4_1
    weights and our converted copy their exact fp32 dequantisation, but llama.cpp multiplies
    them against activations it quantises to 8 bits and accumulates in its own order. Seen:
    0.08 nats per continuation token on average, at most 0.22 (' Paris.': -5.07 served,
    -5.50 HF). So: 0.25 nats per token each, 0.15 on average, and the same choice ranking."""
    backend = OpenAICompatBackend("llama-bos", bos_server, SERVED, max_concurrency=3)
    served = backend.loglikelihood(CHOICES)
    bos = hf_backend.tokenizer.bos_token
    reference = hf_backend.loglikelihood(
        [LoglikelihoodRequest(bos + r.context, r.continuation) for r in CHOICES]
    )
    for ours, theirs in zip(served, reference, strict=True):
        assert ours.n_tokens == theirs.n_tokens and ours.is_greedy == theirs.is_greedy
        assert ours.logprob == pytest.approx(theirs.logprob, abs=0.25 * ours.n_tokens)
    differences = sum(abs(a.logprob - b.logprob) for a, b in zip(served, reference, strict=True))
    assert differences / sum(r.n_tokens for r in served) < 0.15
    # " capital" is the greedy next token for both, which top_logprobs must show.
    greedy = LoglikelihoodRequest(
        "Question: What is the capital of France?\nAnswer: The", " capital"
    )
    with_bos = LoglikelihoodRequest(bos + greedy.context, greedy.continuation)
    assert backend.loglikelihood([greedy])[0].is_greedy
    assert hf_backend.loglikelihood([with_bos])[0].is_greedy
    # A context's trailing space belongs to the continuation, as in lm-eval and HFBackend.
    spaced = LoglikelihoodRequest(
        "Question: Why is the sky blue?\nAnswer: ", "Rayleigh scattering."
    )
    ours = backend.loglikelihood([spaced])[0]
    theirs = hf_backend.loglikelihood(
        [LoglikelihoodRequest(bos + spaced.context, spaced.continuation)]
    )[0]
    assert ours.n_tokens == theirs.n_tokens
    assert ours.logprob == pytest.approx(theirs.logprob, abs=0.25 * ours.n_tokens)
    for start in range(0, len(CHOICES), 3):
        rank = [r.logprob for r in served[start : start + 3]]
        rank_hf = [r.logprob for r in reference[start : start + 3]]
        assert sorted(range(3), key=rank.__getitem__) == sorted(range(3), key=rank_hf.__getitem__)


@pytest.mark.slow
def test_suite_entry_loads_this_backend(server):
    spec = OpenAISpec(name="served", base_url=server + "/v1", model=SERVED, max_concurrency=3)
    backend = load_backend(spec, loaded=None)  # a server entry needs nothing from the suite
    assert isinstance(backend, OpenAICompatBackend)
    assert (backend.base_url, backend.max_concurrency) == (server, 3)


@pytest.mark.slow
def test_unknown_model_and_bad_url_are_load_errors(server):
    with pytest.raises(ModelLoadError, match="does not serve a model named 'gpt-7'"):
        OpenAICompatBackend("llama", server, "gpt-7")
    with pytest.raises(ModelLoadError, match="HTTP 404.*Fix: `base_url`"):
        OpenAICompatBackend("llama", server + "/not-here", SERVED, max_retries=0)


def test_refused_connections_are_retried_then_reported():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="failed 3 times.*ConnectionRefused"):
        OpenAICompatBackend("nobody", url, "m", max_retries=2, backoff_s=0.01)
    assert time.monotonic() - started < 5


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 429 (Retry-After: 0) and then 503 before serving a model list."""

    answers = [429, 503, 200]
    seen: list[int] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        status = self.answers[len(self.seen) % len(self.answers)]
        self.seen.append(status)
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        body = {"data": [{"id": "m"}]} if status == 200 else {"error": "busy"}
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


def test_429_and_5xx_are_retried():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/"
        backend = OpenAICompatBackend("flaky", url, "m", max_retries=3, backoff_s=0.01)
    finally:
        httpd.shutdown()
    assert _Flaky.seen == [429, 503, 200]
    assert backend.identity == f"openai:{url.removesuffix('/v1/')}:m"


def test_continuation_starts_at_the_token_holding_its_first_character():
    logprobs = {
        "text_offset": [0, 8, 11, 15, 19],  # "Question", ": A", " foo", "bar.", then generated
        "token_logprobs": [None, -1.0, -2.0, -3.0, -0.5],
        "top_logprobs": [None, {"x": -0.1}, {" foo": -2.0}, {"y": -1.0}, {"z": -0.5}],
    }
    echoed = EchoedPrompt.from_logprobs(logprobs, len("Question: A foobar."))
    assert echoed.offsets == [0, 8, 11, 15]  # the generated token is dropped
    assert echoed.first_token_at(len("Question: A")) == 2  # " foo" starts right there
    assert echoed.first_token_at(len("Question:")) == 1  # ": A" straddles, so it counts
    assert [echoed.is_top(j) for j in range(4)] == [False, False, True, False]
    assert EchoedPrompt.from_logprobs(None, 10) is None


def test_rate_limiter_spaces_requests():
    limiter = RateLimiter(per_minute=1200)  # one every 50 ms
    started = time.monotonic()
    for _ in range(5):
        limiter.wait()
    assert 0.19 < time.monotonic() - started < 1.0


class _FakeServer(http.server.BaseHTTPRequestHandler):
    """A small OpenAI-compatible server: whitespace-led words are its tokens, each with the
    log-prob -len(token)/10, so every answer can be checked by hand. `owned_by` says whose it
    is; a vLLM one answers GET /version. Every completion body is kept."""

    owned_by: str | None = None
    version: str | None = "9.8.7"
    bodies: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/v1/models":
            entry = {"id": "m", **({"owned_by": self.owned_by} if self.owned_by else {})}
            self._answer(200, {"data": [entry]})
        elif self.path == "/version" and self.owned_by == "vllm" and self.version:
            self._answer(200, {"version": self.version})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        prompt = body["prompt"]
        tokens = re.findall(r"\s*\S+", prompt) if body.get("echo") else []
        text = ""
        if body["max_tokens"] > 0:
            text = " Paris"  # the one token this model ever generates
            tokens.append(text)
        offsets = [sum(map(len, tokens[:i])) for i in range(len(tokens))]
        logprobs = [-len(t) / 10 for t in tokens]
        if body.get("echo"):
            logprobs[0] = None
        tops = [None if p is None else {t: p} for t, p in zip(tokens, logprobs, strict=True)]
        choice = {
            "text": (prompt if body.get("echo") else "") + text,
            "logprobs": {"text_offset": offsets, "token_logprobs": logprobs, "top_logprobs": tops},
        }
        self._answer(200, {"choices": [choice]})

    def _answer(self, status: int, body: dict) -> None:
        self.send_response(status)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("owned_by", "echo_tokens", "engine"),
    [("vllm", 0, {"name": "vllm", "version": "9.8.7"}), ("llamacpp", 1, None), (None, 1, None)],
)
def test_a_vllm_server_is_asked_for_the_prompt_alone_and_named_with_its_version(
    owned_by, echo_tokens, engine
):
    """vLLM's server echoes the prompt with `max_tokens: 0` and its version goes into the
    identity and the manifest; any other server gets one token (0 is "until the context is
    full" on llama-cpp-python), dropped by its offset. The score is the same either way."""
    _FakeServer.owned_by, _FakeServer.bodies = owned_by, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        backend = OpenAICompatBackend("fake", url, "m", max_retries=0)
        [scored] = backend.loglikelihood([LoglikelihoodRequest("Question: why", " not now")])
    finally:
        httpd.shutdown()
    assert backend.engine == engine
    suffix = ":vllm-9.8.7" if engine else ""
    assert backend.identity == f"openai:{url}:m{suffix}"
    assert scored.logprob == pytest.approx(-(4 + 4) / 10) and scored.n_tokens == 2
    echoes = [body for body in _FakeServer.bodies if body.get("echo")]
    assert len(echoes) == 2  # the alignment probe, then the request
    assert {body["max_tokens"] for body in echoes} == {echo_tokens}


def test_a_vllm_server_without_a_version_endpoint_is_named_unknown():
    _FakeServer.owned_by, _FakeServer.version, _FakeServer.bodies = "vllm", None, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        backend = OpenAICompatBackend("fake", url, "m", max_retries=0)
    finally:
        httpd.shutdown()
        _FakeServer.version = "9.8.7"
    assert backend.engine == {"name": "vllm", "version": "unknown"}
    assert backend.identity == f"openai:{url}:m:vllm-unknown"
