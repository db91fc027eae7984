"""Hugging Face transformers backend: prefix-shared log-likelihoods and batched generation."""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache, DynamicLayer

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.models import prompting
from rlhf_eval.models.base import OnBatch, cut_at_stop
from rlhf_eval.models.identity import weights_fingerprint
from rlhf_eval.models.packing import Pack, ScoringRow, build_packs, pack_batch
from rlhf_eval.models.spec import HFSpec, RewardModelSpec
from rlhf_eval.records import Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest

logger = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,  # for parity checks: fp32 rounding alone moves a sentence ~1e-4
}

# A group of requests shares its key/value cache only when the common prefix is this long;
# shorter prefixes cost more in cache copies than they save.
MIN_SHARED_PREFIX = 16
# Longest packed sequence (a context and the continuations that share it).
MAX_PACK_TOKENS = 1024


def loading_options(spec: HFSpec | RewardModelSpec) -> dict[str, Any]:
    """How a suite entry asks transformers to load its weights: the keyword arguments HFBackend
    takes from a `backend: hf` entry, and an LLM reward model's from its own entry."""
    return {
        "dtype": spec.dtype,
        "device": spec.device,
        "batch_size": spec.batch_size,
        "max_length": spec.max_length,
        "revision": spec.revision,
        "trust_remote_code": spec.trust_remote_code,
    }


class HFBackend:
    """A causal LM from a local directory or the hub, scored the way lm-eval scores it.

    Tokenisation follows lm-eval's `_encode_pair` (trailing context spaces move to the
    continuation; the continuation is what the joint encoding adds after the context), so the
    same requests give the same numbers. Log-softmax runs in float32 whatever the weights' dtype.
    """

    def __init__(
        self,
        name: str,
        source: str,
        *,
        dtype: str = "float32",
        device: str = "auto",
        batch_size: int = 32,
        max_length: int | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        chat_template: bool = False,
        share_prefix: bool = True,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name
        self.source = source
        self.dtype = dtype
        self.batch_size = batch_size
        self.chat_template = chat_template
        self.share_prefix = share_prefix
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                source, revision=revision, trust_remote_code=trust_remote_code
            )
            self.model = AutoModelForCausalLM.from_pretrained(
                source,
                revision=revision,
                dtype=DTYPES[dtype],
                trust_remote_code=trust_remote_code,
            ).to(self.device)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"model '{name}': cannot load '{source}' with transformers ({error}). Fix: point "
                "`path` at a folder holding config.json and weights, or `hub_id` at an existing "
                "repository you can reach."
            ) from error
        self.model.eval()
        self.parameters = sum(p.numel() for p in self.model.parameters())
        """Parameter count, recorded in the manifest (reports place models by size)."""
        # transformers 5 renamed the forward argument `past_key_values` to `cache`.
        parameters = inspect.signature(self.model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        # Generation needs the last position's logits only, not a vocabulary row per prompt token.
        self._last_logits_only = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
        self.max_length = max_length or _context_window(self.model.config, self.tokenizer)
        self._identity = self._describe_identity(max_length is not None)

    @classmethod
    def from_spec(cls, spec: HFSpec, source: str) -> HFBackend:
        """The backend of a `backend: hf` entry whose weights are at `source` (a folder, hub id or
        converted alias)."""
        return cls(spec.name, source, chat_template=spec.chat_template, **loading_options(spec))

    @property
    def identity(self) -> str:
        return self._identity

    def _describe_identity(self, custom_window: bool) -> str:
        """Everything that can change an answer: weights, dtype, the chat template actually
        applied to prompts, and a context window narrower than the model's own."""
        parts = ["hf", weights_fingerprint(self.source, self.model.config), self.dtype]
        template = prompting.chat_template_tag(self.tokenizer, self.chat_template)
        if template:
            parts.append(template)
        if custom_window:
            parts.append(f"window-{self.max_length}")
        return ":".join(parts)

    def close(self) -> None:
        del self.model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- tokenisation (lm-eval's rules, shared with the vLLM backend) --------------------

    def _encode(self, text: str) -> list[int]:
        return prompting.encode(self.tokenizer, text)

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        return prompting.encode_pair(self.tokenizer, context, continuation)

    def _row(self, index: int, request: LoglikelihoodRequest) -> ScoringRow:
        context, continuation = self._encode_pair(request.context, request.continuation)
        if not continuation:
            raise ValueError(
                f"request {index}: the continuation {request.continuation!r} encodes to no tokens"
            )
        full = (context + continuation)[-(self.max_length + 1) :]
        return ScoringRow(index, tuple(full[:-1]), tuple(continuation[-self.max_length :]))

    # ---- log-likelihoods ------------------------------------------------------------------

    @torch.inference_mode()
    def loglikelihood(
        self, requests: list[LoglikelihoodRequest], on_batch: OnBatch | None = None
    ) -> list[Loglikelihood]:
        rows = [self._row(i, r) for i, r in enumerate(requests)]
        results: list[Loglikelihood | None] = [None] * len(rows)
        for prefix, group in self._prefix_groups(rows):
            # One sequence cannot be split: out of memory here is a clear error, not a retry.
            cache = _halving_on_oom(self, [prefix], lambda b: self._prefix_cache(b[0]))
            packs = build_packs(group, len(prefix), MAX_PACK_TOKENS, self.share_prefix)
            for batch in self._batches(packs):
                scored = _halving_on_oom(self, batch, partial(self._score, len(prefix), cache))
                for row, result in scored:
                    results[row.index] = result
                if on_batch is not None:
                    on_batch({row.index: result for row, result in scored})
        return results  # type: ignore[return-value]

    def _prefix_groups(
        self, rows: list[ScoringRow]
    ) -> Iterator[tuple[tuple[int, ...], list[ScoringRow]]]:
        """Split rows into runs that share a long token prefix (lexicographic order); rows that
        share none with a neighbour form one last group without a prefix, batched together.

        A prefix never reaches a row's first scored position, so its logits are not needed and
        its key/value cache serves every row of the group.
        """
        if not self.share_prefix:
            yield (), sorted(rows, key=lambda r: r.tokens)
            return
        # A prefix stops short of each row's first scored position.
        runs, loose = _shared_prefix_runs(
            [r.tokens for r in rows], [r.first_scored - 1 for r in rows]
        )
        for members, common in runs:
            yield tuple(rows[members[0]].tokens[:common]), [rows[i] for i in members]
        if loose:
            yield (), [rows[i] for i in loose]

    def _prefix_cache(self, prefix: tuple[int, ...]):
        if not prefix:
            return None
        ids = torch.tensor([prefix], device=self.device)
        output = self.model(input_ids=ids, use_cache=True)
        return getattr(output, self._cache_argument)

    def _batches(self, packs: list[Pack]) -> Iterator[list[Pack]]:
        # Longest first: the first batch is the largest, so memory trouble shows early.
        ordered = sorted(packs, key=lambda p: p.length, reverse=True)
        for start in range(0, len(ordered), self.batch_size):
            yield ordered[start : start + self.batch_size]

    def _score(
        self, prefix_length: int, cache, packs: list[Pack]
    ) -> list[tuple[ScoringRow, Loglikelihood]]:
        pad = self.tokenizer.pad_token_id or 0
        batch = pack_batch(packs, prefix_length, pad, self.model.dtype)
        if cache is None and all(len(pack.rows) == 1 for pack in packs):
            # One sequence per row, each from position 0 with its padding on the right: plain
            # causal attention already keeps every real token from the pads, so the fast
            # kernel runs, as in lm-eval, instead of the masked one a tree of rows needs.
            logits = self.model(input_ids=batch.input_ids.to(self.device), use_cache=False).logits
        else:
            kwargs = {}
            if cache is not None:
                kwargs[self._cache_argument] = _expand_cache(cache, len(packs))
            logits = self.model(
                input_ids=batch.input_ids.to(self.device),
                position_ids=batch.position_ids.to(self.device),
                attention_mask=batch.attention_mask.to(self.device),
                use_cache=False,
                **kwargs,
            ).logits
        scored = []
        for row, b, positions in batch.picks:
            # At least float32, whatever the weights' dtype (float64 stays float64).
            upcast = torch.promote_types(logits.dtype, torch.float32)
            logprobs = F.log_softmax(logits[b, positions].to(upcast), dim=-1)
            targets = torch.tensor(row.targets, device=logprobs.device)
            chosen = logprobs.gather(1, targets[:, None]).squeeze(1)
            greedy = bool((logprobs.argmax(dim=-1) == targets).all())
            scored.append((row, Loglikelihood(float(chosen.sum()), len(row.targets), greedy)))
        return scored

    # ---- generation -------------------------------------------------------------------------

    def format_prompt(self, prompt: str) -> str:
        return prompting.format_prompt(self.tokenizer, self.chat_template, prompt)

    @property
    def applies_chat_form(self) -> bool:
        """Whether requests reach the model through its chat template (and so in their chat
        form, where they have one)."""
        return prompting.applies_chat_form(self.tokenizer, self.chat_template)

    def _in_form(self, request: GenerationRequest) -> tuple[str, GenerationRequest]:
        """(prompt text, request with its stops): see prompting.in_form."""
        return prompting.in_form(self.tokenizer, self.chat_template, request)

    @torch.inference_mode()
    def generate(
        self, requests: list[GenerationRequest], on_batch: OnBatch | None = None
    ) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        # Defaults for whatever the caller left unset; then the chat form where it applies.
        formed = [self._in_form(r.with_defaults()) for r in requests]
        prompts = [prompt for prompt, _ in formed]
        requests = [request for _, request in formed]
        ids = [self._generation_ids(p) for p in prompts]
        for batch in self._generation_batches(requests, ids):
            outputs = _halving_on_oom(
                self, batch, lambda b: self._generate_batch([ids[i] for i in b], requests[b[0]])
            )
            for i, generation in zip(batch, outputs, strict=True):
                results[i] = generation
            if on_batch is not None:
                on_batch(dict(zip(batch, outputs, strict=True)))
        return results  # type: ignore[return-value]

    def _generation_ids(self, prompt: str) -> list[int]:
        """A prompt's tokens as a batched tokenizer call would give them (special tokens added)."""
        return self.tokenizer(prompt)["input_ids"]

    def _generation_batches(
        self, requests: list[GenerationRequest], ids: list[list[int]]
    ) -> Iterator[list[int]]:
        """Batches of request indices with the same settings. Prompts that share a long token
        prefix (a few-shot primer) go together, so the batch runs the prefix once; the rest are
        sorted by length, longest first, so little padding is fed."""
        by_settings: dict[tuple, list[int]] = {}
        for i, request in enumerate(requests):
            by_settings.setdefault(_settings(request), []).append(i)
        for order in by_settings.values():
            if self.share_prefix:
                runs, loose = _shared_prefix_runs(
                    [ids[i] for i in order], [len(ids[i]) for i in order]
                )
                groups = [[order[j] for j in members] for members, _ in runs]
                groups.append([order[j] for j in loose])
            else:
                groups = [order]
            for group in groups:
                group = sorted(group, key=lambda i: -len(ids[i]))
                for start in range(0, len(group), self.batch_size):
                    yield group[start : start + self.batch_size]

    def _generate_batch(
        self, ids: list[list[int]], settings: GenerationRequest
    ) -> list[Generation]:
        tokenizer = self.tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        pad = tokenizer.pad_token_id
        # The tokens every prompt of the batch starts with, less one: each row keeps at least
        # one token to feed, whose logits give the first new token.
        common = min(len(x) for x in ids) - 1
        for other in ids[1:]:
            common = _common_prefix_length(ids[0], other, common)
        share = self.share_prefix and len(ids) * settings.n > 1  # n samples share their prompt
        prefix_length = common if share and common >= MIN_SHARED_PREFIX else 0
        # Left padding keeps the new tokens aligned at the end of every row. With a shared
        # prefix the padding sits between the prefix (run once, its key/value cache repeated
        # over the batch) and each prompt's own tokens; the attention mask hides it, and
        # position ids count real tokens only, so each row sees what it would see alone.
        suffixes = [x[prefix_length:] for x in ids]
        width = max(len(x) for x in suffixes)
        input_ids = torch.full((len(ids), prefix_length + width), pad, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        input_ids[:, :prefix_length] = torch.tensor(ids[0][:prefix_length])
        attention_mask[:, :prefix_length] = 1
        for row, suffix in enumerate(suffixes):
            input_ids[row, input_ids.shape[1] - len(suffix) :] = torch.tensor(suffix)
            attention_mask[row, input_ids.shape[1] - len(suffix) :] = 1
        if settings.n > 1:  # each prompt n times, its samples side by side
            input_ids = input_ids.repeat_interleave(settings.n, dim=0)
            attention_mask = attention_mask.repeat_interleave(settings.n, dim=0)
        cache = None
        if prefix_length:
            cache = self._prefix_cache(tuple(ids[0][:prefix_length]))
            cache.batch_repeat_interleave(input_ids.shape[0])
        rows = self._decode(input_ids, attention_mask, cache, prefix_length, settings)
        generations = []
        for p in range(len(ids)):
            texts, counts = [], []
            for tokens in rows[p * settings.n : (p + 1) * settings.n]:
                kept = [t for t in tokens if t != pad]
                text = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), settings.stop)
                texts.append(text)
                counts.append(len(kept))
            generations.append(Generation(tuple(texts), tuple(counts)))
        return generations

    def _decode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        cache,
        cached_length: int,
        settings: GenerationRequest,
    ) -> list[list[int]]:
        """New tokens for every row: greedy, or sampled at the request's temperature (no top-k,
        no top-p), until the row's end-of-sequence token, a stop string or max_new_tokens.

        A finished row leaves the batch at once (its key/value cache rows dropped), so one long
        answer no longer makes every other row of its batch run to the token limit, as it does
        with `model.generate`. Positions count real tokens only, so padding changes nothing.
        """
        device = self.device
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos.add(self.tokenizer.eos_token_id)
        stops = tuple(settings.stop or ())
        # Enough trailing tokens to hold the longest stop string (a token holds >= 1 char).
        window = max((len(stop) for stop in stops), default=0) + 2
        generator = torch.Generator(device=device).manual_seed(settings.seed)
        rows = [[] for _ in range(input_ids.shape[0])]
        active = torch.arange(input_ids.shape[0])
        mask = attention_mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = _appendable(cache if cache is not None else DynamicCache(config=self.model.config))
        logits = self.model(
            input_ids=input_ids[:, cached_length:].to(device),
            attention_mask=mask,
            position_ids=positions[:, cached_length:],
            use_cache=True,
            **{self._cache_argument: cache},
            **self._last_logits_only,
        ).logits[:, -1]
        last_position = positions[:, -1]
        for step in range(settings.max_new_tokens):
            if settings.temperature > 0:
                probabilities = torch.softmax(logits.float() / settings.temperature, dim=-1)
                chosen = torch.multinomial(probabilities, 1, generator=generator).squeeze(1)
            else:
                chosen = logits.argmax(dim=-1)
            keep = []
            for i, (row, token) in enumerate(zip(active.tolist(), chosen.tolist(), strict=True)):
                rows[row].append(token)
                if token in eos:
                    continue
                if stops:
                    tail = self.tokenizer.decode(rows[row][-window:], skip_special_tokens=True)
                    if any(stop in tail for stop in stops):
                        continue
                keep.append(i)
            if not keep or step == settings.max_new_tokens - 1:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                active, chosen = active[keep], chosen[index]
                mask, last_position = mask[index], last_position[index]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            last_position = last_position + 1
            logits = self.model(
                input_ids=chosen[:, None],
                attention_mask=mask,
                position_ids=last_position[:, None],
                use_cache=True,
                **{self._cache_argument: cache},
            ).logits[:, -1]
        return rows


class _AppendableLayer(DynamicLayer):
    """A key/value cache layer that appends each step's keys and values into spare capacity.

    transformers' DynamicLayer concatenates, copying the whole cache at every new token: for a
    batch of 32 few-shot prompts that is most of a CPU decoding step. This layer copies only
    when it runs out of room (capacity grows by half) or after rows left the batch.
    """

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.get_seq_length()
        end = length + key_states.shape[-2]
        room = getattr(self, "_room", None)
        if (
            room is None
            or room[0].shape[-2] < end
            or room[0].shape[0] != key_states.shape[0]
            or (length and self.keys.data_ptr() != room[0].data_ptr())
        ):
            shape = (*key_states.shape[:-2], max(end + end // 2, 64), key_states.shape[-1])
            room = (key_states.new_empty(shape), value_states.new_empty(shape))
            if length:
                room[0][..., :length, :] = self.keys
                room[1][..., :length, :] = self.values
            self._room = room
        room[0][..., length:end, :] = key_states
        room[1][..., length:end, :] = value_states
        self.keys, self.values = room[0][..., :end, :], room[1][..., :end, :]
        return self.keys, self.values


def _appendable(cache):
    """The cache with its plain dynamic layers appending in place (others left as they are)."""
    for layer in getattr(cache, "layers", []):
        if type(layer) is DynamicLayer:
            layer.__class__ = _AppendableLayer
    return cache


def _halving_on_oom(backend: HFBackend, batch: list, run) -> list:
    """run(batch), splitting the batch in half on out-of-memory until single items fail.

    Later batches start at the size that worked, so one large batch costs one retry, not one
    per batch. Results do not depend on batch size, so splitting changes no number.
    """
    try:
        return run(batch)
    except RuntimeError as error:  # torch.OutOfMemoryError is a RuntimeError
        if not _out_of_memory(error):
            raise
        if len(batch) == 1:
            raise ModelLoadError(
                f"model '{backend.name}': a single request does not fit in memory ({error}). "
                "Fix: lower max_length, use a smaller dtype, or a device with more memory."
            ) from error
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(batch) // 2
        backend.batch_size = max(1, min(backend.batch_size, half))
        logger.warning(
            "%s: out of memory at batch %d; retrying at %d", backend.name, len(batch), half
        )
        return _halving_on_oom(backend, batch[:half], run) + _halving_on_oom(
            backend, batch[half:], run
        )


def _out_of_memory(error: RuntimeError) -> bool:
    message = str(error).lower()
    return (
        isinstance(error, torch.OutOfMemoryError)
        or "out of memory" in message
        or "can't allocate memory" in message  # the CPU allocator's wording
    )


def _settings(request: GenerationRequest) -> tuple:
    return (request.max_new_tokens, request.temperature, request.n, request.seed, request.stop)


def _shared_prefix_runs(
    sequences: Sequence[Sequence[int]], limits: Sequence[int]
) -> tuple[list[tuple[list[int], int]], list[int]]:
    """Indices of `sequences` in lexicographic order, split into runs whose members share at
    least MIN_SHARED_PREFIX leading tokens (no more than each member's limit), each with the
    length its members share; and the indices that share that much with no neighbour."""
    runs: list[tuple[list[int], int]] = []
    for i in sorted(range(len(sequences)), key=lambda i: sequences[i]):
        if runs:
            members, common = runs[-1]
            shared = _common_prefix_length(sequences[members[-1]], sequences[i], common)
            shared = min(shared, limits[i])
            if shared >= MIN_SHARED_PREFIX:
                members.append(i)
                runs[-1] = (members, shared)
                continue
        runs.append(([i], limits[i]))
    shared_runs = [(members, common) for members, common in runs if len(members) > 1]
    loose = [members[0] for members, _ in runs if len(members) == 1]
    return shared_runs, loose


def _common_prefix_length(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = max(0, min(len(a), len(b), limit))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _expand_cache(cache, batch: int):
    """A fresh cache whose tensors view the prefix's cache, repeated over the batch."""
    layers = [(layer.keys, layer.values) for layer in cache.layers]
    return DynamicCache(
        [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in layers]
    )


def _context_window(config, tokenizer) -> int:
    for attribute in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attribute, None)
        if value:
            return int(value)
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit and limit < 10**9 else 2048
