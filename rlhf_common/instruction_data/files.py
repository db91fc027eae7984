"""Rows of instruction-data files with where each came from (file:line), the hub through
rlhf_common.datasets.load_hub, and writing rows back out; plus the field checks every format
uses."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_common import datasets
from rlhf_common.errors import DataError

SUFFIXES = (".jsonl", ".json", ".parquet")
HUB_PREFIX = "hub:"


@dataclass(frozen=True)
class Row:
    data: dict[str, Any]
    where: str
    """"path:line" for JSONL, "path: item i" / "path: row i" for JSON lists and Parquet."""


def read_rows(source: str | Path, split: str = "train", config: str | None = None) -> list[Row]:
    """The rows of a local .jsonl/.json/.parquet file (optionally .gz) or of `hub:<dataset id>`."""
    if isinstance(source, str) and source.startswith(HUB_PREFIX):
        name = source[len(HUB_PREFIX) :]
        records = datasets.load_hub(name, config, split)
        return [Row(_plain(r), f"{source} ({split}) row {i + 1}") for i, r in enumerate(records)]
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(
            f"data file {path} does not exist. Fix: correct the path, or write hub:<dataset id> "
            "to load from the Hugging Face hub."
        )
    suffix = _suffix(path)
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path).to_pylist()
            rows = [Row(_plain(r), f"{path}: row {i + 1}") for i, r in enumerate(table)]
        else:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
            rows = _json_rows(text, path, suffix)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: cannot read the file ({error}).") from error
    for row in rows:
        if not isinstance(row.data, dict):
            raise DataError(f"{row.where}: expected a JSON object, got {type(row.data).__name__}.")
    return rows


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Rows as .jsonl (one object a line), .json (a list) or .parquet; .gz names are gzipped."""
    path = Path(path).expanduser()
    suffix = _suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if path.suffix == ".gz":
            raise DataError(f"{path}: Parquet is compressed already. Fix: drop the .gz suffix.")
        # from_pylist takes its columns from the first row: give every row every field.
        columns = list(dict.fromkeys(k for r in rows for k in r))
        try:
            table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
        except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
            raise DataError(
                f"{path}: Parquet needs one type per column, and these rows mix them ({error}). "
                "Fix: write .jsonl, or text-prompt and conversation records to separate files."
            ) from error
        pq.write_table(table, path)
        return path
    if suffix == ".json":
        text = json.dumps(list(rows), ensure_ascii=False, indent=1) + "\n"
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def _suffix(path: Path) -> str:
    suffix = Path(path.stem).suffix if path.suffix == ".gz" else path.suffix
    if suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'}. Fix: use one of "
            f"{', '.join(SUFFIXES)} (optionally gzipped, .jsonl.gz)."
        )
    return suffix


def _json_rows(text: str, path: Path, suffix: str) -> list[Row]:
    if suffix == ".json":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error}).") from error
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a JSON list of objects. Fix: or use JSONL.")
        return [Row(r, f"{path}: item {i + 1}") for i, r in enumerate(records)]
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(Row(json.loads(line), f"{path}:{n}"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{n}: not valid JSON ({error.msg}).") from error
    return rows


def _plain(value: Any) -> Any:
    """Hub and Parquet values as plain JSON values: NaN (a missing number) becomes None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --- Field checks -------------------------------------------------------------------------------


def field_error(row: Row, name: str, problem: str, fix: str) -> DataError:
    """ "<file:line>: field `name` <problem>. Fix: <fix>"."""
    return DataError(f"{row.where}: field `{name}` {problem}. Fix: {fix}")


def text(row: Row, name: str, fix: str, required: bool = True) -> str | None:
    """A text field; a missing (or null) optional one is None, a missing required one an error."""
    value = row.data.get(name)
    if value is None:
        if required:
            raise field_error(row, name, f"is missing (fields: {_fields(row)})", fix)
        return None
    if not isinstance(value, str):
        raise field_error(row, name, f"must be text, not {type(value).__name__}", fix)
    return value


def optional_text(row: Row, name: str) -> str | None:
    """A text field where empty means absent (Dolly's and Alpaca's empty `context`/`input`)."""
    value = text(row, name, f"give `{name}` as text or leave it out", required=False)
    return value or None


def identifier(row: Row, name: str) -> str | None:
    """An id field (text or an integer) as text; None where absent."""
    value = row.data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise field_error(row, name, f"must be text or an integer, not {value!r}", "fix the id")
    return str(value)


def listing(row: Row, name: str, fix: str) -> list:
    value = row.data.get(name)
    if value is None:
        raise field_error(row, name, f"is missing (fields: {_fields(row)})", fix)
    if not isinstance(value, list):
        raise field_error(row, name, f"must be a list, not {type(value).__name__}", fix)
    return value


def _fields(row: Row) -> str:
    return ", ".join(sorted(row.data)) or "none"


def without_none(record: dict[str, Any]) -> dict[str, Any]:
    """A row to write: optional fields that are None are left out."""
    return {k: v for k, v in record.items() if v is not None}


def positional_id(row: Row, index: int, name: str = "id") -> str:
    """The row's id field, else its position in the file (0-based), so every prompt has an id."""
    found = identifier(row, name)
    return found if found is not None else str(index)


def build(row: Row, cls: type, **fields: Any) -> Any:
    """A record from a row's fields; a record's own check failing becomes a DataError there."""
    try:
        return cls(**fields, source=row.where)
    except ValueError as error:
        raise DataError(f"{row.where}: {error}. Fix: correct the row or drop it.") from error
