"""The transformers backend: exact log-likelihoods, shared prefixes, batch-size invariance."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.models.hf import HFBackend
from rlhf_eval.models.packing import Pack, ScoringRow
from rlhf_eval.records import GenerationRequest, LoglikelihoodRequest

PRIMER = "Q: What is human life expectancy in the United States?\nA: 78 years.\n\n"
REQUESTS = [
    LoglikelihoodRequest(PRIMER + f"Q: {q}\nA:", f" {c}")
    for q in ("Is the Great Wall visible from space?", "Do goldfish remember?", "Why?")
    for c in ("It is not visible.", "No.", "Goldfish have memories that last months.")
] + [
    LoglikelihoodRequest("Telescopes use lenses", " or mirrors to focus light."),
    LoglikelihoodRequest("Nothing happens. ", "I have no comment."),  # trailing space
    LoglikelihoodRequest("", "Nothing happens."),  # empty context
]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return HFBackend("tiny", str(tiny_model_dir), batch_size=4)


def reference_logprob(backend: HFBackend, request: LoglikelihoodRequest) -> float:
    """One unbatched, unshared forward pass over context + continuation."""
    context, continuation = backend._encode_pair(request.context, request.continuation)
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        logprobs = F.log_softmax(backend.model(ids).logits[0, :-1].float(), dim=-1)
    positions = logprobs[len(context) - 1 :]
    return positions.gather(1, torch.tensor(continuation)[:, None]).sum().item()


def test_logprobs_match_a_plain_forward_pass(backend):
    results = backend.loglikelihood(REQUESTS)
    for request, result in zip(REQUESTS, results, strict=True):
        assert result.logprob == pytest.approx(reference_logprob(backend, request), abs=1e-5)
        assert result.logprob < 0


def test_shared_prefix_is_used_and_changes_nothing(backend):
    rows = [backend._row(i, r) for i, r in enumerate(REQUESTS)]
    groups = list(backend._prefix_groups(rows))
    assert max(len(prefix) for prefix, _ in groups) >= 16, "the primer should be shared"
    shared = backend.loglikelihood(REQUESTS)
    backend.share_prefix = False
    try:
        unshared = backend.loglikelihood(REQUESTS)
    finally:
        backend.share_prefix = True
    for a, b in zip(shared, unshared, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5)
        assert a.n_tokens == b.n_tokens and a.is_greedy == b.is_greedy


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_results_do_not_depend_on_batch_size(tiny_model_dir, backend, batch_size):
    expected = backend.loglikelihood(REQUESTS)
    other = HFBackend("tiny", str(tiny_model_dir), batch_size=batch_size)
    for a, b in zip(other.loglikelihood(REQUESTS), expected, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5)


def test_results_do_not_depend_on_request_order(backend):
    forward = backend.loglikelihood(REQUESTS)
    backward = backend.loglikelihood(REQUESTS[::-1])[::-1]
    for a, b in zip(forward, backward, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5)


def test_lm_eval_tokenisation_rules(backend):
    # A trailing context space moves to the continuation (lm-eval's _encode_pair).
    moved = backend._encode_pair("Nothing happens. ", "I have no comment.")
    plain = backend._encode_pair("Nothing happens.", " I have no comment.")
    assert moved == plain
    # An empty context is replaced by the prefix token (EOS when there is no BOS).
    context, continuation = backend._encode_pair("", "Nothing happens.")
    assert context == [backend.tokenizer.eos_token_id]
    assert continuation == backend.tokenizer.encode("Nothing happens.")


def test_long_inputs_are_left_truncated_to_the_window(tiny_model_dir):
    small = HFBackend("tiny", str(tiny_model_dir), max_length=24)
    request = LoglikelihoodRequest(PRIMER * 4, " No.")
    row = small._row(0, request)
    assert len(row.tokens) == 24
    (result,) = small.loglikelihood([request])
    assert result.n_tokens == len(row.targets) and result.logprob < 0


def test_greedy_flag_marks_exactly_the_argmax_continuation(backend):
    context = tuple(backend._encode(PRIMER + "Q: Why?\nA:"))
    with torch.no_grad():
        logits = backend.model(torch.tensor([context])).logits[0, -1]
    best, second = logits.topk(2).indices.tolist()
    greedy = ScoringRow(0, context, (best,))
    other = ScoringRow(1, context, (second,))
    with torch.inference_mode():
        results = [r for _, r in backend._score(0, None, [Pack(context, [greedy, other])])]
    assert [r.is_greedy for r in results] == [True, False]
    expected = F.log_softmax(logits.float(), dim=-1)[[best, second]].tolist()
    assert [r.logprob for r in results] == pytest.approx(expected, abs=1e-5)


def test_generation_is_batched_stops_and_is_deterministic(backend):
    requests = [
        GenerationRequest(prompt=p, max_new_tokens=12, stop=("\n",))
        for p in ("Q: Why?\nA:", "Telescopes use", "Q: Do goldfish remember?\nA:")
    ]
    first = backend.generate(requests)
    again = backend.generate(requests[::-1])[::-1]
    single = [backend.generate([r])[0] for r in requests]
    for a, b, c in zip(first, again, single, strict=True):
        assert a.texts == b.texts == c.texts
        assert "\n" not in a.texts[0]
        assert 0 < a.n_tokens[0] <= 12


def test_generation_with_a_shared_primer_runs_it_once_and_changes_nothing(tiny_model_dir):
    """Few-shot prompts share their primer's key/value cache; every row still gets the tokens
    it gets alone (greedy, the same ids), whatever the batch holds."""
    questions = ("Is the Great Wall visible from space?", "Why?", "Do goldfish remember?")
    requests = [
        GenerationRequest(prompt=PRIMER * 3 + f"Q: {q}\nA:", max_new_tokens=10) for q in questions
    ] + [GenerationRequest(prompt="Telescopes use", max_new_tokens=10)]
    shared = HFBackend("tiny", str(tiny_model_dir), batch_size=4)
    prefixes = []
    original = shared._prefix_cache
    shared._prefix_cache = lambda prefix: prefixes.append(prefix) or original(prefix)
    unshared = HFBackend("tiny", str(tiny_model_dir), batch_size=4, share_prefix=False)
    alone = [unshared.generate([r])[0] for r in requests]
    assert shared.generate(requests) == unshared.generate(requests) == alone
    assert len(prefixes) == 1  # one batch of the three primed prompts, the primer run once
    primer = shared._generation_ids(PRIMER * 3)
    assert len(prefixes[0]) >= len(primer) - 2


def test_sampling_returns_n_texts(backend):
    (result,) = backend.generate(
        [GenerationRequest("Why?", max_new_tokens=5, temperature=1.0, n=3)]
    )
    assert len(result.texts) == 3 and len(result.n_tokens) == 3


def test_identity_changes_with_everything_that_changes_answers(tiny_model_dir, backend):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = "{% for m in messages %}<user>{{ m['content'] }}{% endfor %}<bot>"
    tokenizer.save_pretrained(tiny_model_dir / "chat")
    base = backend.identity
    assert base.startswith("hf:sha256-") and base.endswith(":float32")
    assert HFBackend("t", str(tiny_model_dir), dtype="bfloat16").identity != base
    assert HFBackend("t", str(tiny_model_dir), max_length=64).identity != base
    # A chat template changes generation prompts, so it is part of the identity.
    (tiny_model_dir / "chat" / "config.json").write_bytes(
        (tiny_model_dir / "config.json").read_bytes()
    )
    for name in ("model.safetensors", "generation_config.json"):
        if (tiny_model_dir / name).exists():
            (tiny_model_dir / "chat" / name).write_bytes((tiny_model_dir / name).read_bytes())
    chat = HFBackend("t", str(tiny_model_dir / "chat"), chat_template=True)
    plain = HFBackend("t", str(tiny_model_dir / "chat"), chat_template=False)
    assert plain.identity == base  # same weights, same dtype
    assert chat.identity != plain.identity and ":chat-" in chat.identity
    assert chat.format_prompt("Hi") == "<user>Hi<bot>"


def test_out_of_memory_halves_the_batch_and_changes_no_number(tiny_model_dir, monkeypatch):
    backend = HFBackend("tiny", str(tiny_model_dir), batch_size=8)
    expected = backend.loglikelihood(REQUESTS)
    forward = backend.model.forward
    sizes = []

    def small_memory(*args, **kwargs):
        batch = kwargs["input_ids"].shape[0]
        sizes.append(batch)
        if batch > 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")
        return forward(*args, **kwargs)

    monkeypatch.setattr(backend.model, "forward", small_memory)
    results = backend.loglikelihood(REQUESTS)
    for a, b in zip(results, expected, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5)
    # 8 -> 4 -> 2 (an odd remainder may halve once more)
    assert backend.batch_size <= 2 and max(sizes) > 2 and sizes[-1] <= 2
    generated = backend.generate([GenerationRequest("Why?", max_new_tokens=3)] * 3)
    assert len(generated) == 3


def test_other_errors_and_single_items_are_not_retried_forever(tiny_model_dir, monkeypatch):
    backend = HFBackend("tiny", str(tiny_model_dir), batch_size=4)

    def broken(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(backend.model, "forward", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        backend.loglikelihood(REQUESTS[:2])

    def always_oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(backend.model, "forward", always_oom)
    with pytest.raises(ModelLoadError, match="a single request does not fit in memory"):
        backend.loglikelihood(REQUESTS[:2])


def test_appendable_cache_layer_holds_what_concatenation_holds():
    from transformers.cache_utils import DynamicLayer

    from rlhf_eval.models.hf import _AppendableLayer

    plain, appendable = DynamicLayer(), _AppendableLayer()
    generator = torch.Generator().manual_seed(0)
    batch = 3
    for step, length in enumerate((5, 1, 1, 70, 1)):
        keys, values = (torch.randn(batch, 2, length, 4, generator=generator) for _ in range(2))
        expected, got = plain.update(keys, values), appendable.update(keys, values)
        assert all(torch.equal(e, g) for e, g in zip(expected, got, strict=True))
        if step == 2:  # a row leaves the batch: later updates must not write into stale rows
            index = torch.tensor([0, 2])
            plain.batch_select_indices(index)
            appendable.batch_select_indices(index)
            batch = 2
    assert appendable.get_seq_length() == plain.get_seq_length() == 78


def test_rows_without_a_shared_prefix_are_batched_together(tiny_model_dir):
    """Sentences scored alone (CrowS-Pairs, Winogender) share no prefix: they still fill
    batches, rather than running one forward pass each."""
    backend = HFBackend("tiny", str(tiny_model_dir), batch_size=4)
    sizes = []
    original = backend._score
    backend._score = lambda length, cache, packs: (
        sizes.append(len(packs)) or original(length, cache, packs)
    )
    sentences = ["Nothing happens.", "Goldfish remember.", "Why?", "Telescopes", "Mirrors focus."]
    results = backend.loglikelihood([LoglikelihoodRequest("", s) for s in sentences])
    assert sorted(sizes) == [1, 4]
    for request, result in zip(
        [LoglikelihoodRequest("", s) for s in sentences], results, strict=True
    ):
        assert result.logprob == pytest.approx(reference_logprob(backend, request), abs=1e-5)


def test_a_chat_form_is_used_behind_a_chat_template_and_ignored_without(
    tiny_model_dir, backend, tmp_path
):
    """lm-eval's instruct form (user turn + assistant prefix + extra stops) reaches only a model
    behind its chat template; a plain model reads the plain prompt, under the same cache key."""
    from transformers import AutoTokenizer

    from rlhf_eval.answering import answer
    from rlhf_eval.records import ChatForm
    from rlhf_eval.store import ResponseCache

    chat_dir = tmp_path / "chat"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = "{% for m in messages %}<user>{{ m['content'] }}{% endfor %}<bot>"
    tokenizer.save_pretrained(chat_dir)
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        if (tiny_model_dir / name).exists():
            (chat_dir / name).write_bytes((tiny_model_dir / name).read_bytes())
    form = ChatForm("Write it:", "Here it is: def f", ("```",))
    request = GenerationRequest("def f", max_new_tokens=3, stop=("\n",), chat=form)
    chat = HFBackend("t", str(chat_dir), chat_template=True)
    assert chat.applies_chat_form and not backend.applies_chat_form
    assert chat._in_form(request) == (
        "<user>Write it:<bot>Here it is: def f",
        GenerationRequest("def f", max_new_tokens=3, stop=("\n", "```"), chat=form),
    )
    assert backend._in_form(request) == ("def f", request)
    # The plain backend answers the plain prompt, and caches it under the plain request's key.
    cache = ResponseCache(tmp_path / "cache.sqlite")
    (with_form,) = answer([request], backend, cache, {})
    plain = GenerationRequest("def f", max_new_tokens=3, stop=("\n",))
    count: dict[str, int] = {}
    assert answer([plain], backend, cache, count) == [with_form] and count["cached"] == 1
    # Behind the chat template the form's text is what the model continues.
    (formed,) = chat.generate([request])
    direct = HFBackend("t", str(tiny_model_dir))
    (expected,) = direct.generate(
        [GenerationRequest("<user>Write it:<bot>Here it is: def f", 3, ("\n", "```"))]
    )
    assert formed.texts == expected.texts
    cache.close()
