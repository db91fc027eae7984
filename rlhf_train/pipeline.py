"""The whole InstructGPT recipe in one command: SFT, then the RM, then PPO-ptx, then curves."""

from __future__ import annotations

import json
from pathlib import Path

from rlhf_train.config import PipelineConfig
from rlhf_train.errors import TrainConfigError
from rlhf_train.eval_command import eval_command_installed, run_eval_command
from rlhf_train.ppo import train_ppo
from rlhf_train.rm import train_rm
from rlhf_train.sft import train_sft
from rlhf_train.tracking import read_metrics


def run_pipeline(config: PipelineConfig) -> Path:
    sft_dir = train_sft(config.sft)
    # Sec. 3.5: the reward model starts from the SFT model, unembedding replaced by a scalar head.
    rm_dir = train_rm(config.rm.model_copy(update={"model": config.rm.model or str(sft_dir)}))
    ppo = config.ppo.model_copy(
        update={
            "policy": config.ppo.policy or str(sft_dir),
            "reward_model": config.ppo.reward_model or str(rm_dir),
        }
    )
    ppo_dir = train_ppo(ppo)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    before = next((m for m in read_metrics(ppo_dir) if m["step"] == 0 and "val_score" in m), {})
    summary = {
        "sft": json.loads((sft_dir / "sft_summary.json").read_text()),
        "rm": json.loads((rm_dir / "rm_summary.json").read_text()),
        "ppo": json.loads((ppo_dir / "ppo_summary.json").read_text()),
        "ppo_val_score_before": before.get("val_score"),
        "ppo_val_score_se_before": before.get("val_score_se"),
    }
    (config.output_dir / "pipeline_summary.json").write_text(json.dumps(summary, indent=2))
    plot_curves(rm_dir, ppo_dir, config.output_dir / "pipeline_curves.png")
    if config.eval_suite is not None:
        run_eval_suite(config.eval_suite)
    return config.output_dir


def plot_curves(rm_dir: Path, ppo_dir: Path, path: Path) -> None:
    """RM validation accuracy, PPO reward (train and held-out) and KL against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rm, ppo = read_metrics(rm_dir), read_metrics(ppo_dir)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    series = [
        (axes[0], rm, ["accuracy", "val_accuracy"], "RM pairwise accuracy", "RM step"),
        (axes[1], ppo, ["score", "val_score"], "reward (RM score)", "PPO iteration"),
        (axes[2], ppo, ["kl"], "KL(policy || SFT) per completion", "PPO iteration"),
    ]
    for ax, metrics, keys, title, xlabel in series:
        for key in keys:
            points = [(m["step"], m[key], m.get(f"{key}_se")) for m in metrics if key in m]
            if not points:
                continue
            steps, values, errors = zip(*points, strict=True)
            if all(e is not None for e in errors):  # held-out reward: ±1.96 standard errors
                ax.errorbar(steps, values, [1.96 * e for e in errors], marker="o", ms=3,
                            capsize=3, label=f"{key} (95% CI)")  # fmt: skip
            else:
                ax.plot(steps, values, marker="o", ms=3, label=key)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_eval_suite(suite: Path) -> None:
    """`rlhf-eval run SUITE`, its progress on this terminal (rlhf_train.eval_command)."""
    if not eval_command_installed():
        raise TrainConfigError(
            f"eval_suite: {suite} needs rlhf-eval's runner (rlhf_eval.cli), which this "
            "installation lacks. Fix: remove eval_suite, or run `rlhf-eval` on it yourself."
        )
    code = run_eval_command(["run", str(suite)]).returncode
    if code:
        raise TrainConfigError(f"eval_suite: rlhf-eval exited with {code} on {suite}.")
