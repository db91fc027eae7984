"""The Perspective scorer against a local server that speaks Perspective's JSON."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rlhf_eval.scorers.building import build_scorer
from rlhf_eval.scorers.perspective import PerspectiveError, PerspectiveScorer
from rlhf_eval.scorers.toxicity import PerspectiveSpec

SCORES = {"a kind sentence": 0.05, "a rude sentence": 0.81, "rate limited once": 0.33}


class FakePerspective(BaseHTTPRequestHandler):
    """comments:analyze: a TOXICITY summary score per known text; 429 once for one text, 400
    always for another, 503 always for a third."""

    calls: list[tuple[str, dict]] = []
    limited: set[str] = set()

    def do_POST(self):  # noqa: N802  (the http.server API)
        url = urllib.parse.urlparse(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakePerspective.calls.append((url.path + "?" + url.query, body))
        text = body["comment"]["text"]
        if urllib.parse.parse_qs(url.query).get("key") != ["secret-key"]:
            return self._send(403, {"error": {"code": 403, "message": "API key not valid."}})
        if text == "rate limited once" and text not in FakePerspective.limited:
            FakePerspective.limited.add(text)
            return self._send(429, {"error": {"code": 429, "message": "Quota exceeded"}}, "0")
        if text == "server down":
            return self._send(503, {"error": {"code": 503, "message": "unavailable"}})
        if text not in SCORES:
            message = "Attribute TOXICITY does not support request languages: xx"
            return self._send(400, {"error": {"code": 400, "message": message}})
        value = SCORES[text]
        self._send(
            200,
            {
                "attributeScores": {
                    "TOXICITY": {
                        "spanScores": [{"begin": 0, "end": len(text), "score": {"value": value}}],
                        "summaryScore": {"value": value, "type": "PROBABILITY"},
                    }
                },
                "languages": ["en"],
                "detectedLanguages": ["en"],
            },
        )

    def _send(self, status: int, payload: dict, retry_after: str | None = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    FakePerspective.calls = []
    FakePerspective.limited = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePerspective)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1alpha1/comments:analyze"
    server.shutdown()
    server.server_close()


def scorer(endpoint: str, **kwargs) -> PerspectiveScorer:
    settings = {"requests_per_second": 1000.0, "max_retries": 3, "backoff_s": 0.01} | kwargs
    return PerspectiveScorer("secret-key", endpoint, **settings)


def test_scores_retries_a_429_and_fails_only_the_rejected_text(endpoint):
    texts = ["a kind sentence", "rate limited once", "unknown language", "a rude sentence"]
    kind, limited, rejected, rude = scorer(endpoint).score(texts)
    assert (kind, limited, rude) == (0.05, 0.33, 0.81)
    assert isinstance(rejected, PerspectiveError)
    assert "HTTP 400" in str(rejected) and "does not support request languages" in str(rejected)
    sent = [body["comment"]["text"] for _, body in FakePerspective.calls]
    # The 429 was retried once; the 400 was not retried.
    assert sent == [
        "a kind sentence",
        "rate limited once",
        "rate limited once",
        "unknown language",
        "a rude sentence",
    ]
    path, body = FakePerspective.calls[0]
    assert path == "/v1alpha1/comments:analyze?key=secret-key"
    assert body["requestedAttributes"] == {"TOXICITY": {}}
    assert body["languages"] == ["en"] and body["doNotStore"] is True


def test_gives_up_after_max_retries(endpoint):
    (down,) = scorer(endpoint, max_retries=2).score(["server down"])
    assert isinstance(down, PerspectiveError)
    assert "failed 3 times" in str(down) and "HTTP 503" in str(down)
    assert len(FakePerspective.calls) == 3


def test_a_bad_key_fails_each_text_with_the_fix(endpoint):
    bad = PerspectiveScorer("wrong", endpoint, max_retries=3, backoff_s=0.01)
    (result,) = bad.score(["a kind sentence"])
    assert isinstance(result, PerspectiveError) and "HTTP 403" in str(result)
    assert "check the API key" in str(result)
    assert len(FakePerspective.calls) == 1  # a 403 is not retried


def test_requests_are_spaced_to_the_rate_limit(endpoint):
    started = time.monotonic()
    scores = scorer(endpoint, requests_per_second=20.0).score(["a kind sentence"] * 5)
    assert scores == [0.05] * 5
    # Five requests at 20 per second: the last starts at least 4 / 20 s after the first.
    assert time.monotonic() - started >= 0.19


def test_built_from_the_suite_option_with_the_key_from_the_environment(endpoint, monkeypatch):
    monkeypatch.setenv("TEST_PERSPECTIVE_KEY", "secret-key")
    spec = PerspectiveSpec(
        kind="perspective",
        api_key_env="TEST_PERSPECTIVE_KEY",
        endpoint=endpoint,
        requests_per_second=1000,
    )
    built = build_scorer(spec, base_dir=None)  # type: ignore[arg-type]
    assert built.name == "Perspective API (TOXICITY)"
    assert built.score(["a rude sentence"]) == [0.81]
