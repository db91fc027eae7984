"""GSM8K chain-of-thought parity and wall time: lm-evaluation-harness gsm8k_cot vs rlhf-eval, one
process.

Both tools run the same model (the converted SmolLM2-135M-Instruct weights, fp32, plain prompt,
no chat template) greedily on the first --limit items of ../shared/data/gsm8k/test.jsonl (fed to
lm-eval through a task YAML that includes its own gsm8k-cot.yaml with a local dataset path).
Compares, item by item: the prompts (should be identical), the generated texts, the answers
each tool's strict-match and flexible-extract filters pull out (the figure: agreement on at least
99% of items), and reports both tools' accuracies and wall times. Writes everything to --out.

    python benchmarks/gsm8k_parity.py --limit 5       # smoke test
    python benchmarks/gsm8k_parity.py --limit 200     # the parity figure

Nothing else should run on the machine meanwhile: both timings are taken in this one process.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import textwrap
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/gsm8k/test.jsonl"
TASK = "parity_gsm8k_cot"
FILTERS = {"strict": "strict-match", "flexible": "flexible-extract"}
INVALID = "[invalid]"
"""lm-eval's placeholder where a filter finds nothing; rlhf-eval stores None."""


def write_lm_eval_task(data: Path, folder: Path) -> Path:
    import lm_eval

    cot_yaml = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k-cot.yaml"
    (folder / f"{TASK}.yaml").write_text(
        textwrap.dedent(f"""\
        include: {cot_yaml}
        task: {TASK}
        dataset_path: json
        dataset_name: null
        dataset_kwargs:
          data_files:
            test: {data}
        """)
    )
    return folder


def run_lm_eval(model_dir: str, folder: Path, limit: int, batch_size: int) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    started = time.perf_counter()
    output = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir},dtype=float32",
        tasks=[TASK],
        batch_size=batch_size,
        limit=limit,
        log_samples=True,
        task_manager=TaskManager(include_path=str(folder)),
        device="cpu",
    )
    seconds = time.perf_counter() - started
    items: dict[int, dict] = {}
    for sample in output["samples"][TASK]:
        item = items.setdefault(sample["doc_id"], {})
        item["prompt"] = sample["arguments"][0][0]
        item["output"] = sample["resps"][0][0]
        for ours, theirs in FILTERS.items():
            if sample["filter"] == theirs:
                item[ours] = sample["filtered_resps"][0]
                item[f"correct_{ours}"] = float(sample["exact_match"])
    results = output["results"][TASK]
    return {
        "seconds": seconds,
        "exact_match_flexible": results["exact_match,flexible-extract"],
        "exact_match_strict": results["exact_match,strict-match"],
        "items": [items[i] for i in sorted(items)],
    }


def run_rlhf_eval(data: Path, folder: Path, limit: int, batch_size: int) -> dict:
    from rlhf_eval.runner import run_suite
    from rlhf_eval.suite import load_suite
    from rlhf_eval.tasks.base import registered_tasks

    suite = folder / "parity.yaml"
    suite.write_text(
        textwrap.dedent(f"""\
        name: parity
        output_dir: {folder / "runs"}
        models:
          - name: smollm2
            alias: smollm2-135m-instruct
            chat_template: false
            batch_size: {batch_size}
        tasks:
          - name: gsm8k
            data: {data}
            limit: {limit}
    """)
    )
    loaded = load_suite(suite)
    started = time.perf_counter()
    run = run_suite(loaded, use_cache=False)
    seconds = time.perf_counter() - started
    point = {m.metric: m.estimate.point for m in run.results().metrics if m.task == "gsm8k"}
    by_id = {s["doc_id"]: s for s in run.read_samples("smollm2", "gsm8k")}
    task = registered_tasks()["gsm8k"](loaded.options["gsm8k"], loaded.base_dir)
    items = []
    for doc in task.documents():  # file order, as lm-eval's doc ids
        sample = by_id[doc.id]
        details = sample["details"]
        items.append(
            {
                "prompt": sample["prompt"],
                "output": details["output"],
                "strict": details["strict_answer"],
                "flexible": details["flexible_answer"],
                "correct_strict": sample["metrics"]["exact_match_strict"],
                "correct_flexible": sample["metrics"]["exact_match"],
            }
        )
    return {
        "seconds": seconds,
        "exact_match_flexible": point["exact_match"],
        "exact_match_strict": point["exact_match_strict"],
        "items": items,
    }


def compare(ours: list[dict], theirs: list[dict]) -> dict:
    """Item-by-item agreement; None (rlhf-eval) and "[invalid]" (lm-eval) both mean no answer."""
    if len(ours) != len(theirs):
        raise SystemExit(f"item counts differ: rlhf-eval {len(ours)}, lm-eval {len(theirs)}")
    n = len(ours)
    ours = [{k: INVALID if v is None else v for k, v in item.items()} for item in ours]

    def share(key: str) -> float:
        return sum(a[key] == b[key] for a, b in zip(ours, theirs, strict=True)) / n

    disagreements = [
        {
            "item": i,
            "rlhf_eval": {k: a[k] for k in ("output", "strict", "flexible")},
            "lm_eval": {k: b[k] for k in ("output", "strict", "flexible")},
        }
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
        if a["output"] != b["output"] or a["flexible"] != b["flexible"]
    ]
    return {
        "prompts_identical": share("prompt"),
        "outputs_identical": share("output"),
        "flexible_answers_agree": share("flexible"),
        "strict_answers_agree": share("strict"),
        "scores_agree_flexible": share("correct_flexible"),
        "scores_agree_strict": share("correct_strict"),
        "disagreements": disagreements[:20],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--limit", type=int, default=200, help="first N items (200+ for the figure)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="for both tools")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/gsm8k_parity.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # lm-eval reads the local file only
    from rlhf_common.model_aliases import resolve_alias

    model_dir = str(resolve_alias("smollm2-135m-instruct"))  # converted once, before timing
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_lm_eval_task(args.data.resolve(), Path(tmp))
        ours = run_rlhf_eval(args.data.resolve(), Path(tmp), args.limit, args.batch_size)
        theirs = run_lm_eval(model_dir, folder, args.limit, args.batch_size)
    report = {
        "items": args.limit,
        "model": "smollm2-135m-instruct, fp32, plain prompt, greedy, 256 new tokens",
        "lm_eval": {
            k: theirs[k] for k in ("exact_match_flexible", "exact_match_strict", "seconds")
        },
        "rlhf_eval": {
            k: ours[k] for k in ("exact_match_flexible", "exact_match_strict", "seconds")
        },
        **compare(ours["items"], theirs["items"]),
        "speedup": theirs["seconds"] / ours["seconds"],
    }
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in report.items() if k != "disagreements"}, indent=2))


if __name__ == "__main__":
    main()
