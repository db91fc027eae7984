"""The run directory (manifest, per-task samples, results) and the SQLite response cache."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlhf_eval.errors import CacheError, RunError
from rlhf_eval.manifest import RUN_HISTORY, Hardware, Manifest
from rlhf_eval.records import (
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    Sample,
)
from rlhf_eval.results import SCHEMA_VERSION, Results

PACKAGES = ("rlhf-eval", "torch", "transformers", "accelerate", "numpy", "scipy", "lm-eval")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> Hardware:
    info = Hardware(
        platform=platform.platform(), python=sys.version.split()[0], cpu_count=os.cpu_count()
    )
    try:
        import torch

        info.torch_threads = torch.get_num_threads()
        if torch.cuda.is_available():
            info.gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


class RunDir:
    """runs/<run>/: manifest.json, samples/<model>/<task>.jsonl and results.json."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run, for report, compare and gate."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunError(f"run directory {path} does not exist: pass a folder under runs/.")
        if not run.manifest_path.is_file():
            raise RunError(
                f"{path} is not a run directory: manifest.json not found. Fix: give the folder "
                "`rlhf-eval run` wrote, e.g. runs/<suite name>."
            )
        return run

    @classmethod
    def start(cls, path: Path, manifest: Manifest, overwrite: bool = False) -> RunDir:
        """Create a run, or resume one made by the same suite file and task versions."""
        run = cls(path)
        if run.manifest_path.is_file():
            try:
                old = run.manifest()
            except RunError:
                if not overwrite:
                    raise
                old = None  # unreadable: --overwrite replaces it
            if old is None or old.fingerprint != manifest.fingerprint:
                if old is not None and not overwrite:
                    raise RunError(
                        f"{path} holds a run of a different suite file, task version or "
                        f"rlhf-eval version (suite hash {(old.suite_hash or '?')[:12]} vs "
                        f"{manifest.suite_hash[:12]}; tasks {old.task_versions} vs "
                        f"{manifest.task_versions}). Fix: pass --run-name NEW to keep it, "
                        "or --overwrite to replace it (cached model answers are reused)."
                    )
                shutil.rmtree(path)
            else:
                # Resuming: keep what earlier attempts recorded about the run itself (the
                # fields the old file holds, as the runner has written them so far).
                history = {k: getattr(old, k) for k in RUN_HISTORY if k in old.model_fields_set}
                resumed = [*(old.resumed or []), now()]
                manifest = manifest.model_copy(update={**history, "resumed": resumed})
        path.mkdir(parents=True, exist_ok=True)
        run.write_manifest(manifest)
        return run

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def manifest(self) -> Manifest:
        """The run's manifest; RunError naming the file and field when it does not load."""
        fix = (
            "Fix: correct that field of manifest.json, or run the suite again with --overwrite "
            "to rewrite the run (cached model answers are reused)."
        )
        data = _read_json(
            self.manifest_path,
            "every run directory has a manifest. Fix: pass a folder `rlhf-eval run` wrote, or "
            "run the suite again to rewrite it.",
        )
        try:
            return Manifest.model_validate(data)
        except ValidationError as error:
            raise RunError(
                f"{self.manifest_path} does not match the manifest schema "
                f"({_problems(error)}). {fix}"
            ) from error

    def write_manifest(self, manifest: Manifest) -> None:
        # json.dumps, not model_dump_json: the bytes stay those earlier versions wrote
        # (ASCII escapes, Python's float repr).
        _write_atomic(self.manifest_path, json.dumps(manifest.model_dump(mode="json"), indent=2))

    def samples_path(self, model: str, task_id: str) -> Path:
        return self.path / "samples" / model / f"{task_id}.jsonl"

    def read_samples(self, model: str, task_id: str, repair: bool = False) -> list[dict]:
        """Samples written so far. A torn last line (a killed run) is dropped; with `repair`
        it is also cut off the file so appending continues cleanly."""
        path = self.samples_path(model, task_id)
        if not path.is_file():
            return []
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        samples, good_bytes = [], 0
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:  # bytes: a kill can also cut a multi-byte UTF-8 character in half
                    sample = json.loads(line)
                except ValueError as error:
                    if any(rest.strip() for rest in lines[number:]):
                        raise RunError(
                            f"{path}:{number}: corrupt line ({error}); only a torn last line "
                            "is tolerated. Fix: delete that line (the others are intact), or "
                            "the file to rescore the task."
                        ) from error
                    break  # a torn last line: the run was killed while writing it
                if not isinstance(sample, dict) or "doc_id" not in sample:
                    raise RunError(f"{path}:{number}: not a sample record (no doc_id).")
                samples.append(sample)
            good_bytes += len(line) + 1
        if repair:
            kept = raw[: min(good_bytes, len(raw))]
            if kept != raw or (kept and not kept.endswith(b"\n")):
                path.write_bytes(kept.rstrip(b"\n") + b"\n" if kept.strip() else b"")
        return samples

    def append_samples(self, model: str, task_id: str, samples: Iterable[Sample]) -> None:
        path = self.samples_path(model, task_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = "".join(
            json.dumps(dataclasses.asdict(s), ensure_ascii=False, default=_jsonable) + "\n"
            for s in samples
        )
        with path.open("a", encoding="utf-8") as handle:
            # Processes of a data-parallel run append to the same file: one writer at a time.
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def progress_path(self) -> Path:
        return self.path / "progress.jsonl"

    def log_progress(self, event: dict[str, Any]) -> None:
        """Append one line to progress.jsonl, the run's machine-readable progress (what was
        answered and saved, and when), for tools that follow a long run."""
        line = json.dumps({"time": now(), "pid": os.getpid(), **event}) + "\n"
        with self.progress_path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    @property
    def results_path(self) -> Path:
        return self.path / "results.json"

    def write_results(self, results: Results) -> None:
        _write_atomic(self.results_path, results.model_dump_json(indent=2))

    def results(self) -> Results:
        fix = (
            "The run may not have finished: run the same suite again (finished samples and "
            "cached answers are kept), then render the report."
        )
        data = _read_json(self.results_path, f"the run has no results yet. {fix}")
        version = data.get("schema_version")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise RunError(
                f"{self.results_path} has schema_version {version}, newer than this rlhf-eval "
                f"understands ({SCHEMA_VERSION}): upgrade rlhf-eval to read it."
            )
        try:
            return Results.model_validate(data)
        except ValidationError as error:
            raise RunError(
                f"{self.results_path} does not match the results schema ({_problems(error)}). {fix}"
            ) from error


class RunLock:
    """An exclusive lock on one run folder for a whole run, so two copies of the same run never
    write it at once (each would append every sample). The lock file sits beside the folder,
    `.<run>.lock`, so `--overwrite` can delete the folder while holding it; it names the
    process holding it. The kernel drops the lock when that process dies, even by SIGKILL."""

    def __init__(self, run_path: Path):
        self.run_path = run_path
        self.path = run_path.parent / f".{run_path.name}.lock"
        self._handle = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115  (held for the run)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that has not yet said which"
            handle.close()
            raise RunError(
                f"{self.run_path} is being written by another run: {holder}. Fix: wait for it "
                "to finish or stop it (its finished samples are kept), or pass --run-name to "
                "run into another folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"process {os.getpid()} on {platform.node()} since {now()} "
            f"({' '.join(sys.argv)[:300]})\n"
        )
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class ResponseCache:
    """Model answers keyed by model identity and request, so no request is computed twice."""

    def __init__(self, path: Path | None):
        self.path = path
        self._db: sqlite3.Connection | None = None
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Opening switches the file to WAL mode, which sqlite does not wait for: processes of a
        # data-parallel run (or two runs sharing a cache) take turns opening under a file lock.
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._db = self._open(path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        try:
            # A long timeout: the processes of a data-parallel run share one cache file.
            db = sqlite3.connect(path, timeout=120)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT)")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise CacheError(f"cannot open the response cache {path} ({error}).") from error
            raise CacheError(
                f"the response cache {path} stayed locked by another process for 120 s. Fix: "
                "wait for the other run to finish, give this run its own `cache_dir`, or pass "
                "--no-cache."
            ) from error
        except sqlite3.DatabaseError as error:
            raise CacheError(
                f"the response cache {path} is corrupt ({error}). It holds only cached model "
                "answers, no results: delete it (and any -wal/-shm files beside it) and run "
                "again, or pass --no-cache."
            ) from error
        return db

    @staticmethod
    def key(
        identity: str, request: LoglikelihoodRequest | GenerationRequest, by_item: bool = False
    ) -> str:
        """The request's key. A model's answer depends on the prompt, not on which item rendered
        it, so the request's item key is left out, except for a backend whose answers were made
        elsewhere item by item (`by_item`: the precomputed backend)."""
        kind = type(request).__name__
        fields = dataclasses.asdict(request)
        fields.pop("source", None)  # the planner takes it off: a backend never sees it
        if not by_item:
            fields.pop("key", None)
        if fields.get("chat", 0) is None:
            fields.pop("chat")  # keys of requests without a chat form stay as they were
        body = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(f"{identity}\x00{kind}\x00{body}".encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, Loglikelihood | Generation]:
        if self._db is None or not keys:
            return {}
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk
            ).fetchall()
            for key, value in rows:
                found[key] = _response_from_json(value)
        return found

    def put_many(self, items: dict[str, Loglikelihood | Generation]) -> None:
        if self._db is None or not items:
            return
        rows = [(k, json.dumps(dataclasses.asdict(v))) for k, v in items.items()]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)", rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def _response_from_json(value: str) -> Loglikelihood | Generation:
    data = json.loads(value)
    if "logprob" in data:
        return Loglikelihood(**data)
    scores = data.get("scores")
    return Generation(
        texts=tuple(data["texts"]),
        n_tokens=tuple(data["n_tokens"]),
        scores=None if scores is None else tuple(scores),
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in samples.jsonl")


def _problems(error: ValidationError) -> str:
    """The first few fields that failed validation, each with what was wrong and the value."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        + (f" (found {repr(e['input'])[:60]})" if e["type"] != "missing" and e["loc"] else "")
        for e in error.errors()[:5]
    )


def _read_json(path: Path, missing: str) -> dict:
    """A JSON object from a run file; RunError names the file and what is wrong."""
    if not path.is_file():
        raise RunError(f"{path} not found: {missing}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunError(f"{path} is not valid JSON ({error}).") from error
    if not isinstance(data, dict):
        raise RunError(f"{path} must hold a JSON object, found {type(data).__name__}.")
    return data


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
