"""Throughput of the transformers backend on the default model, in one run.

1. Scoring: TruthfulQA MC requests through HFBackend.loglikelihood. Reports the tokens actually
   fed to the model (packed contexts + answers, plus the primer once per batch), tokens/s, and
   the fraction of the machine's fp32 matmul peak it reaches (tokens/s x 2 x parameters / peak).
   Attention and the padding inside batches are not counted, so the fraction is a lower bound.
2. Generation: the same prompts generated greedily by our batched backend and by a plain
   one-prompt-at-a-time `model.generate` loop (what a notebook does), in new tokens/s.

    python benchmarks/hf_throughput.py --questions 100 --prompts 32 --peak-gflops 400
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from rlhf_common.model_aliases import resolve_alias
from rlhf_eval.models.hf import MAX_PACK_TOKENS, HFBackend
from rlhf_eval.models.packing import build_packs
from rlhf_eval.records import GenerationRequest
from rlhf_eval.tasks.truthfulqa_mc import TruthfulQAMC, TruthfulQAMCOptions

DATA = Path(__file__).resolve().parents[2] / "shared/data/truthfulqa/mc_task.json"


def tokens_fed(backend: HFBackend, requests) -> int:
    """What the packed scoring path runs through the model: each group's shared prefix once,
    then every pack (a context and its answers)."""
    rows = [backend._row(i, r) for i, r in enumerate(requests)]
    total = 0
    for prefix, group in backend._prefix_groups(rows):
        packs = build_packs(group, len(prefix), MAX_PACK_TOKENS, backend.share_prefix)
        total += len(prefix) + sum(p.length for p in packs)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument(
        "--peak-gflops",
        type=float,
        default=400.0,
        help="the machine's fp32 matmul peak (../shared/MEASURED.md: 370-418)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/hf_throughput.json"))
    args = parser.parse_args()

    backend = HFBackend("smollm2", str(resolve_alias("smollm2-135m-instruct")))
    parameters = sum(p.numel() for p in backend.model.parameters())
    task = TruthfulQAMC(TruthfulQAMCOptions(data=str(DATA), limit=args.questions), DATA.parent)
    docs = task.documents()
    requests = [r for d in docs for r in task.requests(d)]
    fed = tokens_fed(backend, requests)
    started = time.perf_counter()
    backend.loglikelihood(requests)
    scoring_s = time.perf_counter() - started
    scoring_tps = fed / scoring_s
    achieved = scoring_tps * 2 * parameters / 1e9

    prompts = [f"Q: {d.data['question']}\nA:" for d in docs[: args.prompts]]
    batched_requests = [
        GenerationRequest(p, max_new_tokens=args.new_tokens, stop=()) for p in prompts
    ]
    started = time.perf_counter()
    batched = backend.generate(batched_requests)
    batched_s = time.perf_counter() - started
    batched_tokens = sum(g.n_tokens[0] for g in batched)

    tokenizer, model = backend.tokenizer, backend.model
    started, loop_tokens = time.perf_counter(), 0
    with torch.inference_mode():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt")
            out = model.generate(
                **ids,
                max_new_tokens=args.new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.eos_token_id,
            )
            loop_tokens += out.shape[1] - ids["input_ids"].shape[1]
    loop_s = time.perf_counter() - started

    report = {
        "parameters": parameters,
        "scoring": {
            "questions": len(docs),
            "requests": len(requests),
            "tokens_fed": fed,
            "seconds": scoring_s,
            "tokens_per_s": scoring_tps,
            "gflops_achieved": achieved,
            "fraction_of_peak": achieved / args.peak_gflops,
        },
        "generation": {
            "prompts": len(prompts),
            "batched": {
                "tokens": batched_tokens,
                "seconds": batched_s,
                "tokens_per_s": batched_tokens / batched_s,
            },
            "one_at_a_time": {
                "tokens": loop_tokens,
                "seconds": loop_s,
                "tokens_per_s": loop_tokens / loop_s,
            },
            "speedup": (batched_tokens / batched_s) / (loop_tokens / loop_s),
        },
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
