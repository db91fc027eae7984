"""answer(): a backend's responses to a batch of requests, each computed once through the cache."""

from __future__ import annotations

from dataclasses import replace

from rlhf_eval.models.base import (
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    ModelBackend,
)
from rlhf_eval.store import ResponseCache
from rlhf_eval.suite import GenerationDefaults

Request = LoglikelihoodRequest | GenerationRequest


def answer(
    requests: list[Request],
    backend: ModelBackend,
    cache: ResponseCache,
    count: dict[str, int],
    defaults: GenerationDefaults | None = None,
) -> list[Loglikelihood | Generation]:
    """Responses in request order: cached ones looked up, the rest computed once each.

    `count` gains how many were computed and how many came from the cache.
    """
    # The model's generation defaults fill what a task left unset, before the cache key is
    # taken, so a changed default never serves a stale answer.
    defaults = defaults or GenerationDefaults()
    requests = [
        r.with_defaults(defaults.max_new_tokens, defaults.temperature, tuple(defaults.stop))
        if isinstance(r, GenerationRequest)
        else r
        for r in requests
    ]
    if not getattr(backend, "applies_chat_form", False):
        # A backend without a chat template reads the plain prompt: the chat form neither
        # changes its answer nor its cache key.
        requests = [
            replace(r, chat=None) if isinstance(r, GenerationRequest) and r.chat else r
            for r in requests
        ]
    by_item = getattr(backend, "answers_by_item", False)
    keys = [ResponseCache.key(backend.identity, r, by_item) for r in requests]
    known = cache.get_many(list(dict.fromkeys(keys)))
    missing = {k: r for k, r in zip(keys, requests, strict=True) if k not in known}
    scoring = {k: r for k, r in missing.items() if isinstance(r, LoglikelihoodRequest)}
    generating = {k: r for k, r in missing.items() if isinstance(r, GenerationRequest)}
    fresh = {}
    if scoring:
        fresh.update(zip(scoring, backend.loglikelihood(list(scoring.values())), strict=True))
    if generating:
        fresh.update(zip(generating, backend.generate(list(generating.values())), strict=True))
    if getattr(backend, "cacheable", True):
        cache.put_many(fresh)
    count["computed"] = count.get("computed", 0) + len(fresh)
    count["cached"] = count.get("cached", 0) + len(known)
    known.update(fresh)
    return [known[k] for k in keys]
