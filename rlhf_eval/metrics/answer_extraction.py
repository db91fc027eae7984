"""Final answers pulled out of chain-of-thought text and matched to the gold answer: GSM8K numbers
(lm-evaluation-harness 0.4.13's gsm8k_cot filters and normalisation) and BIG-Bench Hard answers
(the text after "the answer is")."""

from __future__ import annotations

import re

# lm-eval gsm8k_cot's "strict-match" filter, first match. Its final "." matches any character,
# so an output ending in "The answer is 18" (nothing after) yields "1": kept, for parity.
STRICT_NUMBER = re.compile(r"The answer is (\-?[0-9\.\,]+).")
# lm-eval gsm8k_cot's "flexible-extract" filter, last match: the last number of the output.
FLEXIBLE_NUMBER = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
# gsm8k_cot's exact_match `regexes_to_ignore`, removed in this order from both sides.
IGNORED = tuple(re.compile(p) for p in (",", r"\$", r"(?s).*#### ", r"\.$"))


def strict_number(text: str) -> str | None:
    """The number after the first "The answer is" (lm-eval's strict-match); None if absent."""
    found = STRICT_NUMBER.findall(text)
    return found[0].strip() if found else None


def last_number(text: str) -> str | None:
    """The last number in the text (lm-eval's flexible-extract); None if there is none.

    A number is a run of at least two of `$0-9.,` (so "$1,000.50" and "18." count whole, and
    so does a stray "..") or a single digit, optionally after a minus sign."""
    found = FLEXIBLE_NUMBER.findall(text)
    if not found:
        return None
    group = [g for g in found[-1] if g]
    return group[0].strip() if group else None


def normalize_number(answer: str) -> str:
    """gsm8k_cot's exact-match normalisation: drop commas and dollar signs, anything up to
    "#### ", one trailing period; lower-case. "$1,000." becomes "1000"; "18.00" stays "18.00"
    (lm-eval does not compare numbers numerically, and neither do we)."""
    for pattern in IGNORED:
        answer = pattern.sub("", answer)
    return answer.lower()


def numbers_match(extracted: str | None, target: str) -> bool:
    """Exact match after normalising both sides; no extracted number is never a match (lm-eval
    compares its "[invalid]" placeholder, which no GSM8K answer equals)."""
    return extracted is not None and normalize_number(extracted) == normalize_number(target)


ANSWER_CUE = re.compile(r"the answer is", re.IGNORECASE)
OPTION = re.compile(r"\(([A-Z])\)")


def cue_answer(text: str) -> str | None:
    """BBH's answer: the text after the last "the answer is" (any case, so "So the answer is"
    and "The answer is" both count), up to the end of its line or of its sentence (a period
    followed by white space), stripped of white space and a trailing period. None when the
    cue is absent or nothing follows it.

    lm-eval's bbh_cot_fewshot takes the first cue instead and always drops the line's last
    character; the two agree on outputs that end "So the answer is X." as the exemplars do.
    The last cue is the model's final answer when it revises itself."""
    cues = list(ANSWER_CUE.finditer(text))
    if not cues:
        return None
    rest = text[cues[-1].end() :].strip()
    answer = re.split(r"\.\s", rest.split("\n")[0])[0].strip()
    answer = answer[:-1].rstrip() if answer.endswith(".") else answer
    return answer or None


def cue_answer_matches(answer: str | None, target: str) -> bool:
    """Exact, case-sensitive match with the target, as lm-eval's bbh_cot_fewshot compares.

    One leniency: for a multiple-choice target such as "(A)", the bare letter "A" also counts
    (the option is unambiguous; lm-eval would mark it wrong, open-instruct, which ignores
    punctuation, right). "(A) 12/14/1937" or "a" do not count."""
    if answer is None:
        return False
    target = target.strip()
    if answer == target:
        return True
    option = OPTION.fullmatch(target)
    return option is not None and answer == option.group(1)
