"""answer(): a backend's responses to a batch of requests, each computed once through the cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.models.base import ModelBackend
from rlhf_eval.models.spec import GenerationDefaults
from rlhf_eval.records import (
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    Reward,
    RewardRequest,
    Unanswerable,
)
from rlhf_eval.store import ResponseCache

Request = LoglikelihoodRequest | GenerationRequest | RewardRequest


def answer(
    requests: list[Request],
    backend: ModelBackend,
    cache: ResponseCache,
    count: dict[str, int],
    defaults: GenerationDefaults | None = None,
    on_answered: OnAnswered | None = None,
) -> list[Loglikelihood | Generation | Reward]:
    """Responses in request order: cached ones looked up, the rest computed once each.

    Each backend batch's answers reach the cache as soon as the batch finishes, so a killed
    run loses at most the batch in flight. `on_answered(positions, responses)` hears of every
    request as its answer is known (the cached ones first), so the caller can save the items
    whose requests are all answered. `count` gains how many were computed and how many came
    from the cache.
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
    positions: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        positions.setdefault(key, []).append(position)
    known = _from_cache(cache.get_many(list(positions)), positions, requests)
    count["cached"] = count.get("cached", 0) + len(known)
    _tell(on_answered, positions, known, computed=False)
    missing = {k: requests[p[0]] for k, p in positions.items() if k not in known}
    saves = getattr(backend, "cacheable", True)

    def compute(kind: type, method: str) -> None:
        wanted = {k: r for k, r in missing.items() if isinstance(r, kind)}
        if not wanted:
            return
        order = list(wanted)

        def on_batch(answers: dict[int, Loglikelihood | Generation]) -> None:
            fresh = {order[i]: response for i, response in answers.items() if order[i] not in known}
            if saves:
                # An unanswerable request is not cached: a later run may answer it.
                cache.put_many(
                    {k: _to_cache(r) for k, r in fresh.items() if not isinstance(r, Unanswerable)}
                )
            known.update(fresh)
            count["computed"] = count.get("computed", 0) + len(fresh)
            _tell(on_answered, positions, fresh, computed=True)

        if not callable(getattr(backend, method, None)):
            raise ModelLoadError(
                f"model '{getattr(backend, 'name', '?')}' cannot answer {kind.__name__}s: "
                + (
                    "only a reward model scores completions. Fix: give the model entry "
                    "`backend: reward_model` (a sequence classifier, or `reward_scorer: llm`), "
                    "or run the reward_model task on reward models only."
                    if kind is RewardRequest
                    else "a reward model only scores completions. Fix: run this task on "
                    "language models, and keep reward models for the reward_model task (or "
                    "as judges)."
                )
            )
        responses = getattr(backend, method)(list(wanted.values()), on_batch=on_batch)
        # A backend that did not report some batch: its answers are saved now.
        on_batch({i: r for i, r in enumerate(responses) if order[i] not in known})

    compute(LoglikelihoodRequest, "loglikelihood")
    compute(GenerationRequest, "generate")
    compute(RewardRequest, "reward")
    return [known[k] for k in keys]


def _to_cache(response: Loglikelihood | Generation | Reward) -> Loglikelihood | Generation:
    """A Reward is stored in the cache's Generation form, its score under `scores`; the cache
    reads back only the forms it knows, and the key (which names RewardRequest) says how to
    read it (_from_cache)."""
    if isinstance(response, Reward):
        return Generation(
            texts=(), n_tokens=(response.n_tokens,), scores=({"reward": response.score},)
        )
    return response


def _from_cache(
    found: dict[str, Loglikelihood | Generation],
    positions: dict[str, list[int]],
    requests: list[Request],
) -> dict[str, Loglikelihood | Generation | Reward]:
    """Cached answers, each RewardRequest's turned back into a Reward."""
    out: dict[str, Loglikelihood | Generation | Reward] = {}
    for key, response in found.items():
        if isinstance(requests[positions[key][0]], RewardRequest):
            assert isinstance(response, Generation) and response.scores
            out[key] = Reward(float(response.scores[0]["reward"]), response.n_tokens[0])
        else:
            out[key] = response
    return out


OnAnswered = Callable[[list[int], list[Loglikelihood | Generation], bool], None]
"""answer()'s listener: the positions (in its request list) just answered, their answers, and
whether they were computed now (True) or found in the cache (False)."""


def _tell(
    listener: OnAnswered | None,
    positions: dict[str, list[int]],
    answers: dict[str, Loglikelihood | Generation],
    computed: bool,
) -> None:
    if listener is None or not answers:
        return
    places = [(p, response) for key, response in answers.items() for p in positions[key]]
    listener([p for p, _ in places], [response for _, response in places], computed)
