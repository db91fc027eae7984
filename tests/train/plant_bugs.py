"""Plant known bugs in a copy of rlhf_train, one at a time, and check the trainer tests catch each.

    python tests/train/plant_bugs.py             # every bug, each against the tests named for it
    python tests/train/plant_bugs.py gamma clip  # some of them
    python tests/train/plant_bugs.py --all-tests # each bug against all of tests/train (not slow)

Each bug is an exact source edit that must match exactly once, so a refactor that moves the code
stops this script with an error instead of letting it plant nothing. For each bug, rlhf_train,
rlhf_common (what it shares with rlhf_eval) and tests/train are copied to a temporary folder, the
edit is applied to the copy (never to this tree, which others may be using), the copy is checked
to be the one imported, and pytest runs the bug's tests there in a subprocess: the bug is caught
when pytest fails. Exits 1 if any bug is missed. Run by hand (it is not collected by pytest):
about a minute on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Bug:
    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


BUGS = [
    # The five the outside review planted (issue: "tests that catch real bugs").
    Bug(
        "gamma",
        "the pretraining-mix coefficient gamma dropped from the PPO loss",
        "rlhf_train/ppo.py",
        "loss = nll * config.pretrain.coef\n",
        "loss = nll\n",
        ("test_ppo_step.py",),
    ),
    Bug(
        "clip",
        "maximum replaced by minimum in the clipped policy loss",
        "rlhf_train/losses.py",
        "loss = masked_mean(torch.maximum(unclipped, clipped), mask)",
        "loss = masked_mean(torch.minimum(unclipped, clipped), mask)",
        ("test_losses.py", "test_ppo_step.py"),
    ),
    Bug(
        "temperature",
        "the division by the sampling temperature dropped from the training log-probs",
        "rlhf_train/modeling.py",
        "logits = widened(logits) / temperature\n",
        "logits = widened(logits)\n",
        ("test_modeling.py", "test_ppo_step.py", "test_ppo.py::test_09"),
    ),
    Bug(
        "value-shift",
        "the value estimates shifted by one token",
        "rlhf_train/modeling.py",
        "return token_scores(model, input_ids, attention_mask)[:, prompt_width - 1 : -1]",
        "return token_scores(model, input_ids, attention_mask)[:, prompt_width:]",
        ("test_modeling.py", "test_ppo_step.py"),
    ),
    Bug(
        "logprob-shift",
        "the log-prob targets shifted by one token",
        "rlhf_train/modeling.py",
        "targets = input_ids[:, prompt_width:]\n",
        "targets = input_ids[:, prompt_width - 1 : -1]\n",
        ("test_modeling.py", "test_ppo_step.py", "test_ppo.py::test_09"),
    ),
    # The other bugs and the properties its tests now pin down.
    Bug(
        "generation-config",
        "rollouts inherit the model's generation_config (repetition penalty, top-k ...)",
        "rlhf_train/rewards.py",
        "with without_model_generation_defaults(model):",
        "with contextlib.nullcontext():",
        ("test_rewards.py", "test_ppo.py::test_09"),
    ),
    Bug(
        "min-new-tokens",
        "min_new_tokens=1: EOS hidden at the first step while its log-prob counts",
        "rlhf_train/rewards.py",
        "            generation_config=config,\n",
        "            generation_config=config,\n            min_new_tokens=1,\n",
        ("test_rewards.py",),
    ),
    Bug(
        "bf16-weights",
        "dtype bfloat16 keeps its weights in bf16 (AdamW steps them directly)",
        "rlhf_train/modeling.py",
        '"bfloat16": torch.float32,',
        '"bfloat16": torch.bfloat16,',
        ("test_sft.py", "test_modeling.py"),
    ),
    Bug(
        "train-mode",
        "the policy samples and trains in train mode (dropout on)",
        "rlhf_train/ppo.py",
        "    policy.eval()\n    value_model.eval()\n",
        "    policy.train()\n    value_model.eval()\n",
        ("test_ppo.py::test_09",),
    ),
    Bug(
        "reference-temperature",
        "the reference's log-probs taken at temperature 1 (the KL then never starts at 0)",
        "rlhf_train/ppo.py",
        "ref_logprobs, _ = completion_logprobs(reference, *sequence, config.temperature)",
        "ref_logprobs, _ = completion_logprobs(reference, *sequence)",
        ("test_ppo_step.py",),
    ),
    Bug(
        "rm-pad-eos",
        "the reward model saved with pad == eos (plain transformers reads the token before EOS)",
        "rlhf_train/rm.py",
        "    pad_apart_from_eos(tokenizer, accelerator.unwrap_model(model))\n",
        "",
        ("test_rm.py",),
    ),
    Bug(
        "rm-from-base",
        "the pipeline's reward model starts from the base model, not the SFT model",
        "rlhf_train/pipeline.py",
        'update={"model": config.rm.model or str(sft_dir)}',
        'update={"model": config.rm.model or config.sft.model}',
        ("test_cli.py::test_cli_pipeline_on_tiny_models",),
    ),
    Bug(
        "last-minibatch",
        "an iteration logs its last minibatch's losses instead of their means",
        "rlhf_train/ppo.py",
        "metrics.update(iteration_means(steps))",
        "metrics.update({**steps[-1], 'ppo_steps': len(steps)})",
        ("test_ppo.py::test_an_iteration_logs_means",),
    ),
]


def plant(bug: Bug, copy: Path) -> None:
    """Apply the bug's edit to the copy; it must match exactly once."""
    path = copy / bug.path
    source = path.read_text()
    found = source.count(bug.old)
    if found != 1:
        raise SystemExit(
            f"plant_bugs: {bug.name}: the text to replace occurs {found} times in {bug.path} "
            f"(expected once): {bug.old!r}. Update this script to the code."
        )
    path.write_text(source.replace(bug.old, bug.new))


def selection(tests: tuple[str, ...], copy: Path) -> list[str]:
    """pytest arguments for "file" and "file::name prefix" entries: the files, and a -k that
    keeps whole files (by module name) and the named tests."""
    files = list(dict.fromkeys(t.partition("::")[0] for t in tests))
    keywords = [t.partition("::")[2] or Path(t).stem for t in tests]
    return [str(copy / "tests" / "train" / f) for f in files] + ["-k", " or ".join(keywords)]


def run_bug(bug: Bug | None, all_tests: bool) -> tuple[bool, list[str], float]:
    """(pytest failed, the failing test ids, seconds) with `bug` planted (None: the clean copy)."""
    with tempfile.TemporaryDirectory(prefix="plant_bugs_") as folder:
        copy = Path(folder)
        shutil.copytree(ROOT / "rlhf_train", copy / "rlhf_train")
        shutil.copytree(ROOT / "rlhf_common", copy / "rlhf_common")
        shutil.copytree(ROOT / "tests" / "train", copy / "tests" / "train")
        shutil.copytree(ROOT / "configs", copy / "configs")
        shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
        if bug is not None:
            plant(bug, copy)
        env = {
            **os.environ,
            "PYTHONPATH": str(copy),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        }
        where = subprocess.run(
            [sys.executable, "-c", "import rlhf_train; print(rlhf_train.__file__)"],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not where.startswith(str(copy)):
            raise SystemExit(f"plant_bugs: the copy is not what Python imports ({where}).")
        if all_tests or bug is None:
            targets = [str(copy / "tests" / "train"), "-m", "not slow"]
        else:
            targets = selection(bug.tests, copy)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *targets],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if done.returncode not in (0, 1):
            raise SystemExit(f"plant_bugs: pytest could not run:\n{done.stdout}\n{done.stderr}")
        failed = re.findall(r"^FAILED (\S+)", done.stdout, flags=re.MULTILINE)
        return done.returncode == 1, [f.removeprefix("tests/train/") for f in failed], seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", help="bug names (default: all)")
    parser.add_argument("--all-tests", action="store_true", help="run all of tests/train")
    args = parser.parse_args(argv)
    chosen = [b for b in BUGS if not args.bugs or b.name in args.bugs]
    unknown = set(args.bugs) - {b.name for b in BUGS}
    if unknown:
        parser.error(f"unknown bug(s) {sorted(unknown)}; known: {[b.name for b in BUGS]}")
    failed, _, seconds = run_bug(None, args.all_tests)
    print(f"clean copy: {'FAILS' if failed else 'passes'} ({seconds:.0f} s)")
    if failed:
        print("plant_bugs: the unplanted copy already fails its tests; fix that first.")
        return 1
    missed = []
    for bug in chosen:
        caught, tests, seconds = run_bug(bug, args.all_tests)
        verdict = "caught" if caught else "NOT CAUGHT"
        print(f"{bug.name:22} {verdict:10} ({seconds:3.0f} s) {bug.what}")
        if tests:
            print(f"{'':22} by {', '.join(tests)}")
        if not caught:
            missed.append(bug.name)
    print(f"{len(chosen) - len(missed)} of {len(chosen)} planted bugs caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
