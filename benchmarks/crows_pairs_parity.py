"""CrowS-Pairs parity: lm-evaluation-harness's crows_pairs_english vs rlhf-eval's crows_pairs.

Both tools score the same model (the converted SmolLM2-135M-Instruct weights, fp32) on the same
pairs: ../shared/data/crows_pairs/crows_pairs_anonymized.csv, which lm-eval reads through its own
crows_pairs_english.yaml (included, so its doc_to_choice and process_results are lm-eval's) with
the dataset path pointed at the local CSV. Prints and writes to --out: pct_stereotype and
likelihood_diff from both tools and their differences, the largest per-sentence log-likelihood
gap, how many pairs' pct_stereotype disagree, the mean pair entropy (InstructGPT's measure) from
both tools' log-likelihoods, and both wall times.

    python benchmarks/crows_pairs_parity.py --limit 20     # smoke test (a minute or two)
    python benchmarks/crows_pairs_parity.py                # all 1,508 pairs
"""

from __future__ import annotations

import argparse
import json
import tempfile
import textwrap
import time
from pathlib import Path

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared/data/crows_pairs/crows_pairs_anonymized.csv"
)
LM_EVAL_TASK = "parity_crows_pairs_english"


def write_lm_eval_task(data: Path, folder: Path) -> None:
    """lm-eval's own crows_pairs_english.yaml, reading the local CSV as its test split."""
    import lm_eval

    original = Path(lm_eval.__file__).parent / "tasks/crows_pairs/crows_pairs_english.yaml"
    (folder / f"{LM_EVAL_TASK}.yaml").write_text(
        textwrap.dedent(f"""\
        include: {original}
        task: {LM_EVAL_TASK}
        dataset_path: csv
        dataset_name: null
        dataset_kwargs:
          data_files:
            test: {data}
        """)
    )


def run_lm_eval(model_dir: str, data: Path, limit: int | None, batch_size: int, dtype: str) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as tmp:
        write_lm_eval_task(data, Path(tmp))
        started = time.perf_counter()
        output = lm_eval.simple_evaluate(
            model="hf",
            model_args=f"pretrained={model_dir},dtype={dtype}",
            tasks=[LM_EVAL_TASK],
            batch_size=batch_size,
            limit=limit,
            log_samples=True,
            task_manager=TaskManager(include_path=tmp),
            device="cpu",
        )
        seconds = time.perf_counter() - started
    pairs = []
    for sample in sorted(output["samples"][LM_EVAL_TASK], key=lambda s: s["doc_id"]):
        # One [(log-likelihood, is_greedy)] per choice: sent_more, then sent_less.
        more, less = (float(response[0][0]) for response in sample["resps"])
        pairs.append((sample["doc"]["sent_more"], sample["doc"]["sent_less"], more, less))
    results = output["results"][LM_EVAL_TASK]
    return {
        "seconds": seconds,
        "pct_stereotype": results["pct_stereotype,none"],
        "likelihood_diff": results["likelihood_diff,none"],
        "pairs": pairs,
    }


def run_rlhf_eval(data: Path, folder: Path, limit: int | None, batch_size: int, dtype: str) -> dict:
    from rlhf_eval.runner import run_suite
    from rlhf_eval.suite import load_suite

    suite = folder / "parity.yaml"
    suite.write_text(
        textwrap.dedent(f"""\
        name: crows-parity
        output_dir: {folder / "runs"}
        models:
          - name: smollm2
            alias: smollm2-135m-instruct
            batch_size: {batch_size}
            dtype: {dtype}
        tasks:
          - name: crows_pairs
            data: {data}
            {f"limit: {limit}" if limit else ""}
        """)
    )
    started = time.perf_counter()
    run = run_suite(load_suite(suite), use_cache=False, show_progress=False)
    seconds = time.perf_counter() - started
    point = {m.metric: m.estimate for m in run.results().metrics}
    pairs = [
        (d["sent_more"], d["sent_less"], d["logprob_more"], d["logprob_less"])
        for d in (s["details"] for s in run.read_samples("smollm2", "crows_pairs"))
    ]
    return {
        "seconds": seconds,
        "pct_stereotype": point["crows_pairs_pct_stereotype"].point,
        "likelihood_diff": point["crows_pairs_likelihood_diff"].point,
        "entropy": point["crows_pairs_entropy"].model_dump(),
        "pairs": pairs,
    }


def compare(ours: dict, theirs: dict) -> dict:
    """Pairs matched in file order (the file holds one pair twice, so texts are not keys)."""
    from rlhf_eval.metrics.bias import pair_entropy_bits

    if [p[:2] for p in ours["pairs"]] != [p[:2] for p in theirs["pairs"]]:
        raise SystemExit("the two tools read different sentence pairs from the file")
    gaps, flips = [], 0
    for (_, _, our_more, our_less), (_, _, lm_more, lm_less) in zip(
        ours["pairs"], theirs["pairs"], strict=True
    ):
        gaps += [abs(our_more - lm_more), abs(our_less - lm_less)]
        flips += (our_more > our_less) != (lm_more > lm_less)
    lm_entropy = [pair_entropy_bits(p[2], p[3]) for p in theirs["pairs"]]
    return {
        "pairs": len(ours["pairs"]),
        "pct_stereotype_abs_diff": abs(ours["pct_stereotype"] - theirs["pct_stereotype"]),
        "likelihood_diff_abs_diff": abs(ours["likelihood_diff"] - theirs["likelihood_diff"]),
        "sentences_compared": len(gaps),
        "max_logprob_abs_diff": max(gaps),
        "pairs_with_different_pct_stereotype": flips,
        "entropy_from_lm_eval_logprobs": sum(lm_entropy) / len(lm_entropy),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N pairs")
    parser.add_argument("--lm-eval-batch-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="float64 takes fp32 rounding (~1e-4 nats per sentence here) out of the comparison",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/crows_pairs_parity.json"))
    args = parser.parse_args()
    from rlhf_common.model_aliases import resolve_alias

    model_dir = str(resolve_alias("smollm2-135m-instruct"))  # converted once, before timing
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_rlhf_eval(
            args.data.resolve(), Path(tmp), args.limit, args.batch_size, args.dtype
        )
    theirs = run_lm_eval(
        model_dir, args.data.resolve(), args.limit, args.lm_eval_batch_size, args.dtype
    )
    report = {
        "data": str(args.data),
        "limit": args.limit,
        "dtype": args.dtype,
        "lm_eval": {k: theirs[k] for k in ("pct_stereotype", "likelihood_diff", "seconds")},
        "rlhf_eval": {
            k: ours[k] for k in ("pct_stereotype", "likelihood_diff", "entropy", "seconds")
        },
        **compare(ours, theirs),
        "speedup": theirs["seconds"] / ours["seconds"],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
