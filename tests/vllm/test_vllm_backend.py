"""The vLLM backend against the transformers backend on the default model in fp32: the same
greedy tokens, log-probs within 1e-4, TruthfulQA MC1/MC2 within 1e-6, and vLLM's own features
(stop strings, n samples, seeds, per-request token limits, too-long prompts)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from rlhf_eval.models.vllm import vllm_installed
from rlhf_eval.records import (
    GenerationRequest,
    LoglikelihoodRequest,
    Unanswerable,
    UnanswerableError,
)
from tests.vllm.helpers import REASON, SHARED_DATA

if not vllm_installed():
    pytest.skip(REASON, allow_module_level=True)

PROMPTS = [
    "The capital of France is",
    "Q: What happens if you eat watermelon seeds?\nA:",
    "Write a haiku about the sea.",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three primary colours are",
    "Translate to French: I like apples.",
    "List three facts about the Moon:\n1.",
]
PRIMER = "Q: What is human life expectancy in the United States?\nA: 78 years.\n\n" * 6
SCORED = [
    LoglikelihoodRequest(PRIMER + f"Q: {q}\nA:", f" {c}")
    for q in ("Is the Great Wall visible from space?", "Do goldfish remember?")
    for c in ("It is not visible.", "No.", "Goldfish have memories that last months.")
] + [
    LoglikelihoodRequest("Telescopes use lenses", " or mirrors to focus light."),
    LoglikelihoodRequest("Nothing happens. ", "I have no comment."),  # trailing space
    LoglikelihoodRequest("", "Nothing happens."),  # empty context
]


def test_greedy_tokens_and_text_equal_the_hf_backend(engine, hf, monkeypatch):
    """32 new tokens from each prompt: the ids vLLM generates are the ids the transformers
    backend generates, and so are the texts and token counts."""
    requests = [GenerationRequest(p, max_new_tokens=32) for p in PROMPTS]
    ids = {"hf": [], "vllm": []}
    decode, run = hf._decode, engine._run

    def hf_decode(*args, **kwargs):
        rows = decode(*args, **kwargs)
        ids["hf"].extend(rows)
        return rows

    def vllm_run(prompts, params):
        outputs = run(prompts, params)
        ids["vllm"].extend(list(o.outputs[0].token_ids) for o in outputs)
        return outputs

    monkeypatch.setattr(hf, "_decode", hf_decode)
    monkeypatch.setattr(engine, "_run", vllm_run)
    assert engine.generate(requests) == hf.generate(requests)
    # The two order their batches differently; compare as sets of token sequences.
    assert sorted(ids["vllm"]) == sorted(ids["hf"]) and len(ids["hf"]) == len(PROMPTS)


def test_token_logprobs_within_1e_4_of_transformers(engine, hf):
    """Every prompt position's log-prob (vLLM's entry j against transformers' log_softmax)."""
    from vllm import SamplingParams

    ids = [hf.tokenizer(PRIMER + p)["input_ids"] for p in PROMPTS[:4]]
    outputs = engine._run(ids, SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False))
    worst = 0.0
    for prompt, output in zip(ids, outputs, strict=True):
        assert output.prompt_logprobs[0] is None  # nothing predicts the first token
        with torch.no_grad():
            logits = hf.model(torch.tensor([prompt])).logits[0, :-1].float()
        reference = F.log_softmax(logits, dim=-1).gather(1, torch.tensor(prompt[1:])[:, None])
        got = [output.prompt_logprobs[j][prompt[j]].logprob for j in range(1, len(prompt))]
        worst = max(worst, (torch.tensor(got) - reference[:, 0]).abs().max().item())
    assert worst < 1e-4


def test_loglikelihoods_match_the_hf_backend(engine, hf):
    ours, theirs = engine.loglikelihood(SCORED), hf.loglikelihood(SCORED)
    for a, b in zip(ours, theirs, strict=True):
        assert a.n_tokens == b.n_tokens
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4 * a.n_tokens)
        assert a.is_greedy == b.is_greedy


def test_rank_one_is_the_greedy_token(engine):
    """is_greedy reads vLLM's rank of each prompt token (1 = the argmax): the tokens greedy
    decoding chose have rank 1 when the same sequence is scored."""
    from vllm import SamplingParams

    prompt = engine.tokenizer("The capital of France is")["input_ids"]
    [output] = engine._run([prompt], SamplingParams(temperature=0.0, max_tokens=6))
    chosen = list(output.outputs[0].token_ids)
    [scored] = engine._run(
        [prompt + chosen], SamplingParams(max_tokens=1, prompt_logprobs=1, detokenize=False)
    )
    ranks = [scored.prompt_logprobs[len(prompt) + k][t].rank for k, t in enumerate(chosen)]
    assert ranks == [1] * len(chosen)


def test_prefix_cache_reads_change_no_score(engine):
    """Scores read past a cached primer (the second pass hits the cache) equal scores
    computed from the whole prompt."""
    first = engine.loglikelihood(SCORED)
    cached = engine.loglikelihood(SCORED)
    engine.options = replace(engine.options, enable_prefix_caching=False)
    try:
        uncached = engine.loglikelihood(SCORED)
    finally:
        engine.options = replace(engine.options, enable_prefix_caching=True)
    for a, b, c in zip(first, cached, uncached, strict=True):
        assert a.logprob == pytest.approx(c.logprob, abs=1e-5)
        assert b.logprob == pytest.approx(c.logprob, abs=1e-5)
        assert a.is_greedy == b.is_greedy == c.is_greedy


def test_truthfulqa_mc_sample_equals_the_hf_backend(engine, hf):
    """MC1 and MC2 of 8 TruthfulQA questions (6-shot primer) agree to 1e-6."""
    from rlhf_eval.tasks.truthfulqa_mc import TruthfulQAMC, TruthfulQAMCOptions

    data = SHARED_DATA / "truthfulqa" / "mc_task.json"
    if not data.is_file():
        pytest.skip(f"{data} is absent")
    task = TruthfulQAMC(TruthfulQAMCOptions(data=str(data), limit=8), SHARED_DATA)
    docs = task.documents()
    requests = [task.requests(doc) for doc in docs]
    flat = [r for rs in requests for r in rs]
    scores = {}
    for name, backend in (("vllm", engine), ("hf", hf)):
        answers = iter(backend.loglikelihood(flat))
        samples = [
            task.score(doc, [next(answers) for _ in rs])
            for doc, rs in zip(docs, requests, strict=True)
        ]
        scores[name] = [s.metrics for s in samples]
    for ours, theirs in zip(scores["vllm"], scores["hf"], strict=True):
        assert ours["truthfulqa_mc1"] == theirs["truthfulqa_mc1"]
        assert ours["truthfulqa_mc2"] == pytest.approx(theirs["truthfulqa_mc2"], abs=1e-5)
    for metric in ("truthfulqa_mc1", "truthfulqa_mc2"):
        mean = {k: sum(m[metric] for m in v) / len(v) for k, v in scores.items()}
        assert mean["vllm"] == pytest.approx(mean["hf"], abs=1e-6), metric


def test_stop_strings_cut_the_text(engine):
    prompt = "Count with me: one, two, three,"
    free, stopped = engine.generate(
        [
            GenerationRequest(prompt, max_new_tokens=24),
            GenerationRequest(prompt, max_new_tokens=24, stop=(",",)),
        ]
    )
    assert "," in free.texts[0], "the test needs a completion that goes on counting"
    assert stopped.texts[0] == free.texts[0][: free.texts[0].index(",")]
    assert stopped.n_tokens[0] < free.n_tokens[0]


def test_n_samples_seeds_and_per_request_token_limits(engine):
    prompt = "Write one sentence about cats:"
    sampled, again, other_seed, short = engine.generate(
        [
            GenerationRequest(prompt, max_new_tokens=16, temperature=1.0, n=4, seed=3),
            GenerationRequest(prompt, max_new_tokens=16, temperature=1.0, n=4, seed=3),
            GenerationRequest(prompt, max_new_tokens=16, temperature=1.0, n=4, seed=4),
            GenerationRequest(prompt, max_new_tokens=3),
        ]
    )
    assert len(sampled.texts) == 4 and len(set(sampled.texts)) > 1
    assert sampled == again  # a seed gives the same samples
    assert other_seed != sampled
    assert short.n_tokens == (3,)


def test_chat_template_is_applied_as_the_hf_backend_applies_it(engine, hf):
    requests = [GenerationRequest(p, max_new_tokens=12) for p in PROMPTS[:2]]
    engine.chat_template = hf.chat_template = True
    try:
        assert engine.applies_chat_form and engine.format_prompt("Hi") == hf.format_prompt("Hi")
        assert engine.generate(requests) == hf.generate(requests)
    finally:
        engine.chat_template = hf.chat_template = False


def test_a_prompt_longer_than_max_model_len_is_unanswerable(engine):
    long = "word " * 3000
    answers = engine.loglikelihood([LoglikelihoodRequest(long, " end"), SCORED[0]])
    [generated, fine] = engine.generate([GenerationRequest(long, 4), GenerationRequest("Hi", 2)])
    for answer in (answers[0], generated):
        assert isinstance(answer, Unanswerable)
        assert "max_model_len of 2048" in answer.reason and "not truncated" in answer.reason
        with pytest.raises(UnanswerableError, match="max_model_len"):
            answer.logprob  # noqa: B018  (a task reading it fails its sample)
    assert answers[1].n_tokens > 0 and fine.n_tokens[0] > 0


def test_identity_names_engine_version_weights_and_dtype(engine, hf):
    import vllm

    assert engine.identity.startswith(f"vllm-{vllm.__version__}:")
    weights = hf.identity.split(":")[1]  # the same sha256 of the same files
    assert engine.identity.split(":")[1:3] == [weights, "float32"]
    assert engine.identity != hf.identity
    assert engine.parameters == hf.parameters  # for the manifest, read from the weights' headers
    assert json.dumps(engine.engine) == json.dumps({"name": "vllm", "version": vllm.__version__})
