"""Requests into tokens and prompt text, the same for every backend that holds a tokenizer.

The transformers and vLLM backends both call these, so the two give a model the same tokens:
lm-eval's tokenisation rules for log-likelihoods, and the chat template applied the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from rlhf_eval.records import GenerationRequest


def encode(tokenizer, text: str) -> list[int]:
    """Token ids with the tokenizer's special tokens, unless the text already starts with BOS."""
    bos = tokenizer.bos_token
    if bos and text.startswith(bos):
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)


def prefix_token(tokenizer) -> int:
    """What an empty context becomes: BOS, or EOS for tokenizers without one (lm-eval's rule)."""
    token = tokenizer.bos_token_id
    return token if token is not None else tokenizer.eos_token_id


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's `_encode_pair`: trailing context spaces move to the continuation, and the
    continuation is what encoding the two together adds after the context's tokens."""
    if not context:
        return [prefix_token(tokenizer)], encode(tokenizer, continuation)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(tokenizer, context + continuation)
    context_tokens = encode(tokenizer, context)
    return context_tokens, whole[len(context_tokens) :]


def applies_chat_form(tokenizer, chat_template: bool) -> bool:
    """Whether requests reach the model through its chat template (asked for, and the tokenizer
    has one), and so in their chat form where they have one."""
    return bool(chat_template and tokenizer.chat_template)


def format_prompt(tokenizer, chat_template: bool, prompt: str) -> str:
    """The prompt as one user turn of the chat template, ready for the assistant's answer; the
    plain prompt when no template applies."""
    if applies_chat_form(tokenizer, chat_template):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return prompt


def in_form(
    tokenizer, chat_template: bool, request: GenerationRequest
) -> tuple[str, GenerationRequest]:
    """(prompt text, request with its stops): a request's chat form when the chat template
    applies (its user turn, then its assistant prefix), else its plain prompt."""
    form = request.chat
    if form is None or not applies_chat_form(tokenizer, chat_template):
        return format_prompt(tokenizer, chat_template, request.prompt), request
    stop = tuple(dict.fromkeys((*(request.stop or ()), *form.stop)))
    text = format_prompt(tokenizer, chat_template, form.user) + form.prefix
    return text, replace(request, stop=stop)


def chat_template_tag(tokenizer, chat_template: bool) -> str | None:
    """`chat-<hash>` of the template a backend applies (part of its identity), or None."""
    if not applies_chat_form(tokenizer, chat_template):
        return None
    return f"chat-{hashlib.sha256(tokenizer.chat_template.encode()).hexdigest()[:12]}"
