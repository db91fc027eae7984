"""Run logging: a progress bar, metrics.jsonl in the output folder, and accelerate's trackers."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm


class RunLog:
    """One per recipe run; only the main process writes."""

    def __init__(self, accelerator, output_dir: Path, total: int, start: int, config, name: str):
        self.accelerator = accelerator
        self.main = accelerator.is_main_process
        self.path = output_dir / "metrics.jsonl"
        if self.main:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / f"{name}_config.json").write_text(config.model_dump_json(indent=2))
            # A resumed run keeps the curve up to its checkpoint and rewrites the rest.
            kept = [m for m in read_metrics(output_dir) if m["step"] < start] if start else []
            self.path.write_text("".join(json.dumps(m) + "\n" for m in kept))
        self.trackers = bool(config.log_with)
        if self.trackers:
            accelerator.init_trackers(name, config=json.loads(config.model_dump_json()))
        self.bar = tqdm(
            total=total, initial=start, desc=name, disable=not (self.main and config.progress_bar)
        )

    def log(self, step: int, metrics: dict) -> None:
        if self.main:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")
            self.bar.set_postfix({k: round(v, 4) for k, v in metrics.items() if "loss" in k})
        if self.trackers:
            self.accelerator.log(metrics, step=step)

    def advance(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        if self.trackers:
            self.accelerator.end_training()


def read_metrics(output_dir: Path) -> list[dict]:
    path = Path(output_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
