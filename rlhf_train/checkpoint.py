"""Checkpoints: Hugging Face model folders (safetensors) plus the state that makes resuming exact.

A checkpoint directory holds one folder per trained model (loadable by plain transformers Auto*
classes), `optimizer.pt` (optimiser and scheduler), `rng_state_<rank>.pt` (each process's torch,
Python and NumPy generators), optional extra tensors such as EMA weights (`<name>.safetensors`)
and `trainer_state.json` (step, data position, KL coefficient, best validation score). Data order
is a pure function of (seed, step), so the step number is the data position.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rlhf_train.errors import TrainError

STATE_FILE = "trainer_state.json"


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / "checkpoints" / f"step-{step:06d}"


def find_checkpoint(path: Path) -> Path:
    """`path` itself if it is a checkpoint, else the latest checkpoint under path/checkpoints."""
    if (path / STATE_FILE).is_file():
        return path
    candidates = sorted((path / "checkpoints").glob("step-*/" + STATE_FILE))
    if not candidates:
        raise TrainError(
            f"resume_from: {path} is neither a checkpoint (no {STATE_FILE}) nor an output_dir "
            "with checkpoints/step-*. Fix: point it at output_dir/checkpoints/step-N."
        )
    return candidates[-1].parent


def save_model_dir(accelerator, model, tokenizer, directory: Path, config_updates=None) -> None:
    """Save a model as a plain transformers folder (safetensors + config + tokenizer)."""
    unwrapped = accelerator.unwrap_model(model)
    state_dict = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        for key, value in (config_updates or {}).items():
            setattr(unwrapped.config, key, value)
        unwrapped.save_pretrained(directory, state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(directory)
    accelerator.wait_for_everyone()


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    accelerator,
    directory: Path,
    models: dict,
    optimizer,
    scheduler,
    state: dict,
    tensors: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write a complete checkpoint; it appears under its final name only once fully written."""
    partial = directory.with_name(directory.name + ".partial")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    for name, (model, tokenizer) in models.items():
        save_model_dir(accelerator, model, tokenizer, partial / name)
    torch.save(rng_state(), partial / f"rng_state_{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            partial / "optimizer.pt",
        )
        for name, named in (tensors or {}).items():
            save_file(
                {k: v.detach().contiguous().clone() for k, v in named.items()},
                partial / f"{name}.safetensors",
            )
        (partial / STATE_FILE).write_text(json.dumps(state, indent=2))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(directory, ignore_errors=True)
        partial.rename(directory)
    accelerator.wait_for_everyone()
    return directory


def load_checkpoint(accelerator, directory: Path, optimizer, scheduler) -> dict:
    """Restore optimiser, scheduler and this process's RNG; return trainer_state.json.

    Model weights are not touched here: recipes build their models from the checkpoint's model
    folders before calling this, exactly as a fresh run builds them from the config.
    """
    state = json.loads((directory / STATE_FILE).read_text())
    saved = torch.load(directory / "optimizer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    rng_file = directory / f"rng_state_{accelerator.process_index}.pt"
    if not rng_file.is_file():
        raise TrainError(
            f"{directory} has no {rng_file.name}: it was written with fewer processes. Fix: "
            "resume with the same number of processes."
        )
    set_rng_state(torch.load(rng_file, weights_only=False))
    return state


def load_tensors(directory: Path, name: str) -> dict[str, torch.Tensor] | None:
    path = directory / f"{name}.safetensors"
    return load_file(path) if path.is_file() else None
