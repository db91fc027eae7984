"""The training config files: typed, closed pydantic schemas with every default in one place.

Relative paths (data files, output and resume directories, local models) resolve against the
directory of the config file, so a config runs the same from any working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo

from rlhf_common.model_aliases import ALIASES
from rlhf_train.errors import TrainConfigError
from rlhf_train.modeling import TINY_RANDOM


def _base_dir(info: ValidationInfo) -> Path:
    return Path((info.context or {}).get("base_dir", "."))


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    value = value.expanduser()
    return value if value.is_absolute() else (_base_dir(info) / value).resolve()


def _resolve_model(value: str, info: ValidationInfo) -> str:
    """An alias or hub id stays as given; an existing or path-like local name becomes absolute."""
    if value in ALIASES or value == TINY_RANDOM:
        return value
    local = Path(value).expanduser()
    candidate = local if local.is_absolute() else _base_dir(info) / local
    if candidate.exists() or value.startswith((".", "/", "~")):
        return str(candidate.resolve())
    return value


RelPath = Annotated[Path, AfterValidator(_resolve_path)]
ModelName = Annotated[str, AfterValidator(_resolve_model)]
"""A local model directory, a Hugging Face hub id, or an alias such as smollm2-135m-instruct."""


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSource(_Closed):
    path: RelPath
    limit: int | None = Field(None, ge=1)
    """Use only the first `limit` records (quick runs)."""
    text_field: str = "text"
    """For pretraining text: which JSONL field holds the document."""


class PretrainMix(_Closed):
    """Pretraining batches whose NLL is added to the loss in the same optimiser step (eq. 2)."""

    data: DataSource
    coef: float = Field(1.0, ge=0.0)
    """gamma of eq. 2, per token: the step's loss adds coef times the mean NLL per pretraining
    token to the PPO loss, itself a mean per completion token. The paper's gamma = 27.8 is not
    on this scale (its normalisation is not published), so tune it here. 0 turns it off exactly."""
    batch_size: int = Field(8, ge=1)
    """Documents per optimiser step, over all processes."""
    max_length: int = Field(256, ge=2)


class RunConfig(_Closed):
    """What every recipe shares: where to write, how long sequences may be, logging, resuming."""

    output_dir: RelPath
    seed: int = 0
    max_length: int = Field(512, ge=4)
    overlong: Literal["error", "skip"] = "error"
    """An example longer than max_length raises (default) or is dropped and counted."""
    dtype: Literal["float32", "bfloat16", "float64"] = "float32"
    """The models' precision. bfloat16 is mixed precision: float32 weights (the optimiser's master
    copy, also what is saved) with every forward of every model under bf16 autocast. float64 is
    for exact checks: two data-parallel processes then match one process to about 1e-15, where
    float32's reduction order alone moves weights by up to 2e-5 after a few Adam steps."""
    log_with: list[Literal["tensorboard", "wandb"]] = []
    log_every: int = Field(1, ge=1)
    save_every: int | None = Field(None, ge=1)
    """Write a resumable checkpoint every N optimiser steps."""
    resume_from: RelPath | None = None
    """A checkpoint (output_dir/checkpoints/step-N) or an output_dir whose latest one to take."""
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    progress_bar: bool = True


class OptimConfig(_Closed):
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    """Stop after this many optimiser steps even if epochs remain."""
    batch_size: int = Field(8, ge=1)
    """Examples (RM: prompts) per optimiser step, over all processes."""
    micro_batch_size: int = Field(8, ge=1)
    """Examples per forward pass in one process; smaller means gradient accumulation."""
    lr: float = Field(1e-5, gt=0.0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)


class SFTConfig(RunConfig):
    model: ModelName
    data: DataSource
    val_data: DataSource | None = None
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """Held out from `data` when no `val_data` is given."""
    optim: OptimConfig = OptimConfig()
    eval_every: int | None = Field(None, ge=1)
    """Validation every N steps; by default once per epoch."""
    select_by: Literal["val_loss", "rm_score", "last"] = "val_loss"
    """Which evaluated checkpoint becomes output_dir's model (sec. 3.5 selects SFT by RM score)."""
    select_reward_model: ModelName | None = None
    """The RM that scores validation completions when select_by is rm_score."""
    select_max_new_tokens: int = Field(32, ge=1)
    pretrain: PretrainMix | None = None


class RMConfig(RunConfig):
    model: ModelName | None = None
    """The model the reward model starts from. The paper starts it from the SFT model (sec. 3.5),
    which is what `rlhf-train pipeline` does when this is unset; `rlhf-train rm` needs it set."""
    data: DataSource
    val_data: DataSource | None = None
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    demonstrations: DataSource | None = None
    """Demonstrations whose mean score the bias sets to 0; default: the best-ranked completions."""
    optim: OptimConfig = OptimConfig(lr=9e-6)
    eval_every: int | None = Field(None, ge=1)


class KLConfig(_Closed):
    beta: float = Field(0.02, ge=0.0)
    """The KL reward coefficient of eq. 2 (InstructGPT uses 0.02); the start value if adaptive."""
    adaptive: bool = False
    """Use the adaptive controller of Ziegler et al. (2019) instead of a fixed beta."""
    target: float = Field(6.0, gt=0.0)
    horizon: int = Field(10000, ge=1)


class PPOConfig(RunConfig):
    policy: ModelName | None = None
    """The SFT model: the initial policy and (unless `reference` is set) the frozen reference."""
    reference: ModelName | None = None
    reward_model: ModelName | None = None
    value_init: Literal["reward_model", "policy"] = "reward_model"
    """The value function starts from the RM (app. C.4) or from the policy with a new head."""
    prompts: DataSource
    val_prompts: DataSource | None = None
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    pretrain: PretrainMix | None = None
    """PPO-ptx: add coef * pretraining NLL to every PPO optimiser step (coef 0 is plain PPO)."""
    iterations: int = Field(10, ge=1)
    rollout_batch_size: int = Field(16, ge=1)
    """Prompts sampled per iteration, over all processes."""
    minibatch_size: int = Field(8, ge=1)
    """Rollouts per optimiser step, over all processes."""
    micro_batch_size: int = Field(8, ge=1)
    ppo_epochs: int = Field(1, ge=1)
    max_new_tokens: int = Field(32, ge=1)
    temperature: float = Field(1.0, gt=0.0)
    """Rollouts sample from softmax(logits / temperature), with no top-k, top-p, penalty or
    anything else from the model's generation_config; PPO's log-probs divide by it too."""
    kl: KLConfig = KLConfig()
    gamma: float = Field(1.0, ge=0.0, le=1.0)
    lam: float = Field(0.95, ge=0.0, le=1.0)
    clip: float = Field(0.2, gt=0.0)
    value_clip: float = Field(0.2, gt=0.0)
    vf_coef: float = Field(1.0, ge=0.0)
    policy_lr: float = Field(1e-6, gt=0.0)
    value_lr: float = Field(9e-6, gt=0.0)
    whiten_advantages: bool = True
    max_approx_kl: float | None = Field(None, gt=0.0)
    """Early stop: the iteration's remaining PPO steps are skipped once a step's approximate KL
    to the rollout policy (mean over tokens of (log ratio)^2 / 2) exceeds this, e.g. 0.02; the
    logged `ppo_steps` shows how many ran. None (default) always takes every step."""
    stop_token: str | None = None
    """Completions end at the first occurrence of this token (default: the EOS token)."""
    missing_eos_penalty: float | None = Field(1.0, ge=0.0)
    """Subtracted from the RM score of a completion that never emitted the stop token."""
    ema_decay: float | None = Field(None, gt=0.0, lt=1.0)
    """If set, also keep an exponential moving average of the policy and save it as the output."""
    eval_every: int | None = Field(None, ge=1)
    """Score held-out prompts every N iterations, plus before and after training."""
    val_samples: int = Field(4, ge=0)
    """Completions sampled per held-out prompt (at `temperature`, from seeded streams, so every
    evaluation draws with the same random numbers): the held-out reward is the expected reward
    PPO maximises. 0 scores one greedy completion per prompt instead."""


class PipelineConfig(_Closed):
    """SFT, then the RM, then PPO-ptx from their outputs; then optionally an eval suite.

    Left unset, ppo.policy is sft.output_dir and ppo.reward_model is rm.output_dir.
    """

    output_dir: RelPath
    """Where the pipeline's summary and curves (pipeline_curves.png) go."""
    sft: SFTConfig
    rm: RMConfig
    ppo: PPOConfig
    eval_suite: RelPath | None = None


def load_config(path: Path, schema: type[BaseModel]):
    """Read and validate a YAML config; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise TrainConfigError(f"config file {path} does not exist.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise TrainConfigError(f"{path}: not valid YAML ({error}).") from error
    try:
        return schema.model_validate(raw, context={"base_dir": path.resolve().parent})
    except ValidationError as error:
        problems = "; ".join(
            f"`{'.'.join(str(p) for p in e['loc']) or '(top level)'}`: {e['msg']}"
            for e in error.errors()
        )
        raise TrainConfigError(f"{path}: {problems}. Fix the field(s) named.") from error
