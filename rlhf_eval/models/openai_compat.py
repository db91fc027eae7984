"""OpenAI-compatible HTTP backend: /v1/completions for generation and echoed prompt log-probs."""

from __future__ import annotations

import email.utils
import http.client
import json
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.models.base import OnBatch, cut_at_stop
from rlhf_eval.models.spec import OpenAISpec
from rlhf_eval.records import Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest

T = TypeVar("T")
R = TypeVar("R")

# Status codes worth another try: rate limited, or the server (or a proxy) failing for now.
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 60.0
# OpenAI's API accepts at most four stop sequences; the rest are applied on our side.
MAX_SERVER_STOPS = 4

# The alignment probe: a prompt whose greedy next token is a clear, separate word.
PROBE_PROMPT = "The capital of France is"
# The same server scoring the same token twice differs only by batch-order rounding; a
# misaligned server is off by whole nats.
PROBE_TOLERANCE = 0.05


class OpenAICompatBackend:
    """A model behind an OpenAI-compatible server (vLLM, llama.cpp, TGI, hosted APIs).

    Generation sends one /v1/completions request per GenerationRequest, at most
    `max_concurrency` at a time. Log-likelihoods ask the server to echo the prompt with its
    log-probs (`echo: true, logprobs: 1`) and sum the continuation's tokens, found by their
    `text_offset`; the server's tokenizer decides the token boundaries. vLLM's server is asked
    for `max_tokens: 0` (the prompt only); other servers for one token, which is dropped,
    because llama-cpp-python reads 0 as "until the context is full".

    A vLLM server is recognised by its model list (`owned_by: vllm`); its version (GET
    /version) goes into the identity and the manifest's engine record.

    Before the first log-likelihood request the backend checks that the server's prompt
    log-probs are aligned with their tokens (see `check_prompt_logprobs`), because
    llama-cpp-python's server returns them shifted by one token for models without a BOS token.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 5,
        timeout_s: float = 120,
        requests_per_minute: int | None = None,
        backoff_s: float = 1.0,
    ):
        self.name = name
        self.base_url = _normalise(base_url)
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self._limiter = RateLimiter(requests_per_minute) if requests_per_minute else None
        self._headers = {"Content-Type": "application/json"}
        if api_key_env is not None:
            key = os.environ.get(api_key_env)
            if not key:
                raise ModelLoadError(
                    f"model '{name}': the environment variable {api_key_env} (api_key_env) is "
                    f"not set. Fix: export {api_key_env}=<your API key for {self.base_url}>"
                )
            self._headers["Authorization"] = f"Bearer {key}"
        self._alignment_checked = False
        self._alignment_lock = threading.Lock()
        self.engine: dict[str, str] | None = None
        self._identity = self._connect()

    @classmethod
    def from_spec(cls, spec: OpenAISpec) -> OpenAICompatBackend:
        """The backend of a `backend: openai` entry: connects to its server."""
        return cls(
            spec.name,
            spec.base_url,
            spec.model,
            api_key_env=spec.api_key_env,
            max_concurrency=spec.max_concurrency,
            requests_per_minute=spec.requests_per_minute,
        )

    @property
    def identity(self) -> str:
        return self._identity

    def close(self) -> None:
        """Nothing to free: each request opens its own connection."""

    # ---- HTTP -----------------------------------------------------------------------------

    def _connect(self) -> str:
        """List the server's models: checks the URL, the key and the model name at load time."""
        listing = self._request("GET", "/v1/models", None)
        identity = f"openai:{self.base_url}:{self.model}"
        entries = [e for e in listing.get("data", []) if isinstance(e, dict)]
        ids = [str(e.get("id")) for e in entries]
        if self.model not in ids:
            raise ModelLoadError(
                f"model '{self.name}': {self.base_url} does not serve a model named "
                f"'{self.model}'. It serves: {', '.join(ids) or 'nothing'}. Fix: set `model` to "
                "one of those."
            )
        entry = entries[ids.index(self.model)]
        # vLLM reports the weights it loaded as `root`; fold it in so a swap shows up.
        root = entry.get("root")
        if root and root != self.model:
            identity = f"{identity}:{root}"
        if entry.get("owned_by") == "vllm":
            # Another vLLM release can change the last digits of an answer.
            self.engine = {"name": "vllm", "version": self._server_version()}
            identity = f"{identity}:vllm-{self.engine['version']}"
        return identity

    def _server_version(self) -> str:
        """vLLM's GET /version; "unknown" where the server does not answer it."""
        try:
            version = self._request("GET", "/version", None).get("version")
        except (ModelLoadError, AttributeError):
            return "unknown"
        return str(version) if version else "unknown"

    def _request(self, method: str, path: str, body: dict | None) -> dict:
        url = self.base_url + path
        data = json.dumps(body).encode() if body is not None else None
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            if self._limiter is not None:
                self._limiter.wait()
            request = urllib.request.Request(url, data=data, headers=self._headers, method=method)
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                detail = _error_text(error)
                if error.code not in RETRYABLE_STATUS:
                    raise ModelLoadError(self._explain(error.code, url, detail)) from error
                last_problem = f"HTTP {error.code}: {detail}"
                retry_after = _retry_after(error.headers.get("Retry-After"))
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                reason = getattr(error, "reason", error)
                last_problem = f"{type(reason).__name__}: {reason}"
            except json.JSONDecodeError as error:
                raise ModelLoadError(
                    f"model '{self.name}': {url} answered with something that is not JSON. Fix: "
                    "point `base_url` at an OpenAI-compatible server."
                ) from error
            if attempt < self.max_retries:
                time.sleep(self._backoff(attempt, retry_after))
        raise ModelLoadError(
            f"model '{self.name}': {url} failed {self.max_retries + 1} times (last: "
            f"{last_problem}). Fix: check that the server is running at {self.base_url} and "
            "healthy, or lower `max_concurrency` / set `requests_per_minute` if it is overloaded."
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; the server's Retry-After wins when longer."""
        delay = random.uniform(0, min(MAX_BACKOFF_S, self.backoff_s * 2**attempt))
        return max(delay, retry_after) if retry_after is not None else delay

    def _explain(self, status: int, url: str, detail: str) -> str:
        where = f"model '{self.name}': {url} answered HTTP {status} ({detail})."
        if status in (401, 403):
            return (
                f"{where} Fix: set `api_key_env` to the environment variable holding a valid "
                f"API key for {self.base_url}."
            )
        if status == 404:
            return (
                f"{where} Fix: `base_url` should be the server's root (e.g. "
                "http://127.0.0.1:8000), which serves /v1/completions, and `model` a model it "
                "serves."
            )
        return f"{where} Fix: check the request settings against what the server supports."

    def _map(
        self, function: Callable[[T], R], items: Sequence[T], on_batch: OnBatch | None = None
    ) -> list[R]:
        """function(item) for every item, `max_concurrency` at a time, in item order; each
        answer goes to `on_batch` (from this thread) as soon as it arrives."""
        results: list[Any] = [None] * len(items)
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(items)))) as pool:
            futures = {pool.submit(function, item): i for i, item in enumerate(items)}
            try:
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    if on_batch is not None:
                        on_batch({i: results[i]})
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return results

    # ---- generation ---------------------------------------------------------------------

    def generate(
        self, requests: list[GenerationRequest], on_batch: OnBatch | None = None
    ) -> list[Generation]:
        return self._map(self._generate_one, [r.with_defaults() for r in requests], on_batch)

    def _generate_one(self, request: GenerationRequest) -> Generation:
        texts: list[str] = []
        counts: list[int] = []
        # Servers that ignore `n` (llama-cpp-python) answer with one choice; the missing
        # samples are asked for one at a time with the following seeds.
        while len(texts) < request.n:
            wanted = request.n - len(texts)
            response = self._complete(request, wanted, request.seed + len(texts))
            choices = sorted(response.get("choices", []), key=lambda c: c.get("index", 0))
            if not choices:
                raise ModelLoadError(
                    f"model '{self.name}': {self.base_url} returned no completion choices."
                )
            choices = choices[:wanted]
            used = (response.get("usage") or {}).get("completion_tokens")
            for choice in choices:
                texts.append(cut_at_stop(choice.get("text", ""), request.stop or ()))
                # The API reports one total over the choices, so several share it evenly.
                counts.append(round(used / len(choices)) if used is not None else 0)
        return Generation(tuple(texts), tuple(counts))

    def _complete(self, request: GenerationRequest, n: int, seed: int) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "seed": seed,
        }
        if n > 1:
            body["n"] = n
        stops = [s for s in request.stop or () if s][:MAX_SERVER_STOPS]
        if stops:
            body["stop"] = stops
        return self._request("POST", "/v1/completions", body)

    # ---- log-likelihoods ----------------------------------------------------------------

    def loglikelihood(
        self, requests: list[LoglikelihoodRequest], on_batch: OnBatch | None = None
    ) -> list[Loglikelihood]:
        for i, request in enumerate(requests):
            if not request.continuation:
                raise ValueError(f"request {i}: the continuation is empty")
            if not request.context.strip():
                raise ValueError(
                    f"request {i}: an empty context cannot be scored through an OpenAI-"
                    "compatible server: nothing predicts the first prompt token, so its "
                    "log-prob is undefined. Give the request a context."
                )
        with self._alignment_lock:
            if not self._alignment_checked:
                self.check_prompt_logprobs()
                self._alignment_checked = True
        return self._map(self._score_one, requests, on_batch)

    def _echo(self, prompt: str) -> EchoedPrompt:
        body = {
            "model": self.model,
            "prompt": prompt,
            "echo": True,
            "logprobs": 1,
            # vLLM echoes the prompt alone for 0; llama-cpp-python reads 0 as "until the
            # context is full", so other servers make one token, dropped by its text offset.
            "max_tokens": 0 if self.engine is not None else 1,
            "temperature": 0.0,
        }
        response = self._request("POST", "/v1/completions", body)
        choices = response.get("choices") or [{}]
        echoed = EchoedPrompt.from_logprobs(choices[0].get("logprobs"), len(prompt))
        if echoed is None:
            raise ModelLoadError(self._no_prompt_logprobs())
        return echoed

    def _no_prompt_logprobs(self) -> str:
        return (
            f"model '{self.name}': {self.base_url} did not return prompt log-probabilities for "
            f"'{self.model}'. Log-likelihood tasks need a server that supports `echo: true` with "
            "`logprobs` on /v1/completions (vLLM's server does; llama-cpp-python needs "
            "--logits_all true; most hosted chat APIs do not). Fix: use such a server, or run "
            "only generation tasks on this model."
        )

    def _score_one(self, request: LoglikelihoodRequest) -> Loglikelihood:
        prompt = request.context + request.continuation
        echoed = self._echo(prompt)
        # lm-eval's rule: trailing whitespace of the context belongs to the continuation.
        first = echoed.first_token_at(len(request.context.rstrip()))
        scored = range(first, len(echoed.logprobs))
        logprobs = [echoed.logprobs[j] for j in scored]
        if any(value is None for value in logprobs):
            raise ModelLoadError(self._no_prompt_logprobs())
        greedy = all(echoed.is_top(j) for j in scored)
        return Loglikelihood(math.fsum(logprobs), len(logprobs), greedy)  # type: ignore[arg-type]

    def check_prompt_logprobs(self) -> None:
        """Refuse a server whose echoed prompt log-probs are not aligned with their tokens.

        Two checks. (1) The first prompt token has no log-prob (nothing predicts it); a number
        there means the list is shifted. (2) The greedy next token of PROBE_PROMPT is generated
        normally, whose log-prob every server computes correctly, then the prompt plus that
        token is echoed: the echoed log-prob of the last token must match. llama-cpp-python
        0.3.x pairs each prompt token with the distribution *after* it (issues #1983, #1276)
        and blanks the first entry, so only check (2) catches it. The shift cannot be undone
        from the response (the needed distribution is not returned), so we refuse.
        """
        body = {
            "model": self.model,
            "prompt": PROBE_PROMPT,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": 1,
        }
        response = self._request("POST", "/v1/completions", body)
        choice = (response.get("choices") or [{}])[0]
        generated = (choice.get("logprobs") or {}).get("token_logprobs") or [None]
        token, expected = choice.get("text", ""), generated[0]
        if not token or expected is None:
            raise ModelLoadError(self._no_prompt_logprobs())
        echoed = self._echo(PROBE_PROMPT + token)
        if echoed.logprobs and echoed.logprobs[0] is not None:
            raise ModelLoadError(self._misaligned("gave the first prompt token a log-prob"))
        last = echoed.first_token_at(len(PROBE_PROMPT))
        if last != len(echoed.logprobs) - 1 or echoed.offsets[last] != len(PROBE_PROMPT):
            warnings.warn(
                f"model '{self.name}': could not verify the alignment of {self.base_url}'s "
                f"prompt log-probs (the probe token {token!r} was retokenised); trusting them.",
                stacklevel=3,
            )
            return
        found = echoed.logprobs[last]
        if found is None or abs(found - expected) > PROBE_TOLERANCE:
            shown = "nothing" if found is None else f"{found:.4f}"
            raise ModelLoadError(
                self._misaligned(
                    f"scored the probe token {token!r} at {shown} when echoed but {expected:.4f} "
                    "when generated"
                )
            )

    def _misaligned(self, what: str) -> str:
        return (
            f"model '{self.name}': {self.base_url} returns prompt log-probabilities shifted by "
            f"one token (it {what}); llama-cpp-python's server does this for models without a "
            "BOS token (llama-cpp-python issues #1983, #1276). Log-likelihood scores from it "
            "would be wrong. Fix: serve the model with vLLM's server (or another server whose "
            "echoed log-probs are aligned); or start llama-cpp-python with `--kv_overrides "
            "tokenizer.ggml.add_bos_token=bool:true`, which aligns them but starts every prompt "
            "with BOS; or run only generation tasks on this model."
        )


@dataclass(frozen=True)
class EchoedPrompt:
    """The prompt's tokens as the server echoed them: start offsets and log-probs."""

    offsets: list[int]
    logprobs: list[float | None]
    top: list[dict[str, float] | None]

    @classmethod
    def from_logprobs(cls, logprobs: dict | None, prompt_length: int) -> EchoedPrompt | None:
        if not logprobs or not logprobs.get("text_offset") or "token_logprobs" not in logprobs:
            return None
        offsets = list(logprobs["text_offset"])
        values = list(logprobs["token_logprobs"])
        top = list(logprobs.get("top_logprobs") or [None] * len(values))
        # Keep the prompt's tokens; the one generated token starts at the prompt's end.
        keep = sum(1 for offset in offsets if offset < prompt_length)
        return cls(offsets[:keep], values[:keep], top[:keep])

    def first_token_at(self, position: int) -> int:
        """Index of the token holding character `position` (the last starting at or before it)."""
        index = 0
        for j, offset in enumerate(self.offsets):
            if offset <= position:
                index = j
        return index

    def is_top(self, j: int) -> bool:
        """Whether token j is the server's most likely token there (unknown counts as no)."""
        top, value = self.top[j], self.logprobs[j]
        if not top or value is None:
            return False
        return value >= max(top.values()) - 1e-6


class RateLimiter:
    """Spaces requests evenly so that at most `per_minute` start in any minute."""

    def __init__(self, per_minute: int):
        self.interval = 60.0 / per_minute
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


def _normalise(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read().decode(errors="replace")
    except OSError:
        return error.reason or ""
    try:
        message = json.loads(body).get("error", body)
        if isinstance(message, dict):
            message = message.get("message", message)
        return str(message)[:300]
    except (ValueError, AttributeError):
        return body[:300]


def _retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
