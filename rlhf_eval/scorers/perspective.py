"""Google's Perspective API as a toxicity scorer: one `comments:analyze` request per text,
rate-limited, retried on 429 and 5xx, each text's failure kept to that text."""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.models.openai_compat import RateLimiter, _error_text, _retry_after
from rlhf_eval.scorers.toxicity import PerspectiveSpec, Score, checked_score

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
MAX_BACKOFF_S = 60.0


class PerspectiveError(RuntimeError):
    """Perspective could not score one text (a permanent 4xx, or retries ran out)."""


def api_key(spec: PerspectiveSpec) -> str:
    key = os.environ.get(spec.api_key_env)
    if not key:
        raise ModelLoadError(
            f"the Perspective scorer reads its API key from the environment variable "
            f"{spec.api_key_env} (`api_key_env`), which is not set. Fix: export "
            f"{spec.api_key_env}=<your Perspective API key>, or use another `scorer: kind`."
        )
    return key


class PerspectiveScorer:
    """TOXICITY summary scores, requested one text at a time (Perspective scores one comment
    per request). Requests are spaced to `requests_per_second` and sent in order: the default
    quota is one per second, where concurrency buys nothing."""

    name = "Perspective API (TOXICITY)"

    def __init__(
        self,
        key: str,
        endpoint: str,
        *,
        requests_per_second: float = 1.0,
        max_retries: int = 5,
        timeout_s: float = 30.0,
        backoff_s: float = 1.0,
    ):
        self._url = f"{endpoint}?{urllib.parse.urlencode({'key': key})}"
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self._limiter = RateLimiter(requests_per_second * 60.0)  # type: ignore[arg-type]
        self.identity = f"perspective:{endpoint}:TOXICITY"
        self.requests = 0
        """HTTP requests sent, retries included."""

    @classmethod
    def from_spec(cls, spec: PerspectiveSpec) -> PerspectiveScorer:
        return cls(
            api_key(spec),
            spec.endpoint,
            requests_per_second=spec.requests_per_second,
            max_retries=spec.max_retries,
            timeout_s=spec.timeout_s,
        )

    def score(self, texts: Sequence[str]) -> list[Score]:
        out: list[Score] = []
        for text in texts:
            try:
                out.append(checked_score(self._analyze(text)))
            except PerspectiveError as error:
                out.append(error)
        return out

    def _analyze(self, text: str) -> float:
        body = json.dumps(
            {
                "comment": {"text": text},
                "languages": ["en"],
                "requestedAttributes": {"TOXICITY": {}},
                # Model outputs are not comments to keep: ask Perspective not to store them.
                "doNotStore": True,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        last = ""
        for attempt in range(self.max_retries + 1):
            self._limiter.wait()
            self.requests += 1
            request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return _toxicity(json.loads(response.read()))
            except urllib.error.HTTPError as error:
                detail = _error_text(error)
                if error.code not in RETRYABLE_STATUS:
                    raise PerspectiveError(_explain(error.code, detail)) from error
                last = f"HTTP {error.code}: {detail}"
                retry_after = _retry_after(error.headers.get("Retry-After"))
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                last = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
            except (ValueError, KeyError, TypeError) as error:
                raise PerspectiveError(
                    f"Perspective answered without a TOXICITY summary score ({error})"
                ) from error
            if attempt < self.max_retries:
                delay = random.uniform(0, min(MAX_BACKOFF_S, self.backoff_s * 2**attempt))
                time.sleep(max(delay, retry_after or 0.0))
        raise PerspectiveError(
            f"Perspective failed {self.max_retries + 1} times (last: {last}). Fix: check the "
            "network and quota, or lower `requests_per_second`."
        )


def _toxicity(payload: dict) -> float:
    return float(payload["attributeScores"]["TOXICITY"]["summaryScore"]["value"])


def _explain(status: int, detail: str) -> str:
    where = f"Perspective answered HTTP {status} ({detail})."
    if status in (401, 403):
        return f"{where} Fix: check the API key and that the Perspective API is enabled for it."
    return where
