"""Reading data files: local CSV/JSON/JSONL/Parquet files (optionally gzipped) or the hub."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from rlhf_common.errors import DataError, DataUnavailable

SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")


def read_records(data: str, base_dir: Path) -> tuple[list[dict], Path]:
    """Records of a local data file; relative paths resolve against `base_dir` (the suite's)."""
    path = Path(data).expanduser()
    if not path.is_absolute():
        path = (base_dir / path).resolve()
    if not path.is_file():
        raise DataError(
            f"data file {path} does not exist. Fix: correct the task's `data` field (relative "
            "paths are relative to the suite file), or use `data: hub`."
        )
    suffix = path.suffix if path.suffix != ".gz" else Path(path.stem).suffix
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported data format; use one of {', '.join(SUFFIXES)}.")
    try:
        if suffix == ".parquet":
            import pandas as pd

            return pd.read_parquet(path).to_dict("records"), path.with_suffix(suffix)
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
        if suffix == ".csv":
            records = list(csv.DictReader(io.StringIO(text)))
        elif suffix == ".json":
            records = json.loads(text)
            if isinstance(records, dict) and isinstance(records.get("data"), list):
                records = records["data"]
        else:
            records = [_json_line(line, path, n) for n, line in _lines(text)]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: cannot parse the file ({error}).") from error
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected a list of records (objects), one per item.")
    return records, path.with_suffix(suffix) if path.suffix == ".gz" else path


def _lines(text: str):
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield n, line


def _json_line(line: str, path: Path, n: int) -> dict:
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{n}: not valid JSON ({error.msg}).") from error


HUB_PROBE_TIMEOUT_S = 3.0


@functools.cache
def hub_unreachable() -> str | None:
    """Why the hub cannot be reached (None when it can, or when HF_HUB_OFFLINE asks for the local
    cache): one quick connection per process, instead of the hub clients' retries with backoff
    (about 45 s per dataset on a machine without network)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return None
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or 443
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as error:
        return (
            f"the hub ({host}:{port}) is out of reach ({error}); set HF_HUB_OFFLINE=1 to read "
            "a copy already in the local hub cache"
        )
    return None


def require_hub(what: str) -> None:
    """DataUnavailable at once when the hub is out of reach."""
    reason = hub_unreachable()
    if reason:
        raise DataUnavailable(
            f"cannot load the hub dataset {what}: {reason}. Fix: check the network or "
            "HF_TOKEN, or point the task's `data` field at a local copy."
        )


def load_hub(path: str, config: str | None, split: str) -> list[dict]:
    """A hub dataset split as records; offline machines get a clear error, not a traceback
    (DataUnavailable: the runner skips a `data: hub` entry that raises it)."""
    require_hub(f"{path} ({config}, {split})")
    try:
        import datasets

        return list(datasets.load_dataset(path, config, split=split))
    except Exception as error:  # the hub raises many types: connection, auth, missing
        raise DataUnavailable(
            f"cannot load the hub dataset {path} ({config}, {split}): {error}. Fix: check the "
            "network or HF_TOKEN, or point the task's `data` field at a local copy."
        ) from error


def load_hub_file(repository: str, filename: str) -> list[dict]:
    """A JSON file of a hub dataset repository as records; out of reach is DataUnavailable (the
    runner then skips a `data: hub` entry with the reason)."""
    require_hub(f"{repository} ({filename})")
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(repository, filename, repo_type="dataset")
    except Exception as error:  # the hub raises many types: connection, auth, missing
        raise DataUnavailable(
            f"cannot load the hub dataset {repository} ({filename}): {error}. Fix: check the "
            "network or HF_TOKEN, or point the task's `data` field at a local copy."
        ) from error
    records, _ = read_records(path, Path(path).parent)
    return records


def resolve_path(data: str, base_dir: Path) -> Path:
    """A local data path as given; relative paths resolve against `base_dir` (the suite's)."""
    path = Path(data).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def read_table(path: Path) -> list[tuple[int, dict[str, str | None]]]:
    """Rows of a CSV file (tab-separated, unquoted, when the name ends in .tsv), each with the
    line it starts on, so a data error can name the line (quoted CSV fields may span lines)."""
    if not path.is_file():
        raise DataError(
            f"data file {path} does not exist. Fix: correct the task's `data` field (relative "
            "paths are relative to the suite file), or use `data: hub`."
        )
    tsv = path.suffix == ".tsv"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(
                handle,
                delimiter="\t" if tsv else ",",
                quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL,
            )
            header = next(reader, None)
            if not header:
                raise DataError(f"{path}: the file is empty; it needs a header line.")
            rows, start = [], reader.line_num + 1
            for fields in reader:
                if any(f.strip() for f in fields):
                    padded = fields + [None] * (len(header) - len(fields))
                    rows.append((start, dict(zip(header, padded, strict=False))))
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: cannot parse the file ({error}).") from error
    return rows
