"""Human labels and their SQLite file in the run directory (runs/<run>/labels.sqlite)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rlhf_eval.errors import RunError
from rlhf_eval.judges.rubrics import FLAGS as RUBRIC_FLAGS

LABELS_FILE = "labels.sqlite"
SCHEMA_VERSION = 1

LIKERT = range(1, 8)
"""The paper's overall quality score: 1 (worst) to 7 (best)."""

FLAGS: dict[str, str] = {f.name: f.label[0].upper() + f.label[1:] for f in RUBRIC_FLAGS}
"""The metadata labelers record for each output (InstructGPT's Table 3, in its order), under
the names the LLM rater of the `ratings` task uses, so human and rater flags line up."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    task TEXT NOT NULL,
    labeler TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    model TEXT NOT NULL,
    likert INTEGER NOT NULL,
    flags TEXT NOT NULL,
    rank INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    output TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (task, labeler, doc_id, model)
);
"""
_COLUMNS = ("task", "labeler", "doc_id", "model", "likert", "flags", "rank", "prompt", "output")


@dataclass(frozen=True)
class Label:
    """One labeler's judgement of one model's output to one prompt.

    `rank` is the output's place in the labeler's ranking of all K outputs of the prompt:
    1 is best and tied outputs share a rank. The prompt and output are the texts the labeler
    saw, kept so an export never pairs a label with text rewritten later.
    """

    task: str
    labeler: str
    doc_id: str
    model: str
    likert: int
    flags: tuple[str, ...]
    rank: int
    prompt: str
    output: str


class LabelStore:
    """labels.sqlite: one row per (task entry, labeler, prompt, model); a prompt's K rows are
    written together, so a prompt is either labeled whole or not at all."""

    def __init__(self, path: Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise RunError(
                f"{self.path} not found: nobody has labeled this run yet. Fix: start the "
                f"labeling app with `rlhf-eval label {self.path.parent}` and label some "
                "prompts first."
            )
        with self._connect() as db:
            self._check(db, create)

    @classmethod
    def for_run(cls, run_path: Path, create: bool = True) -> LabelStore:
        return cls(Path(run_path) / LABELS_FILE, create)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            yield db
        except sqlite3.DatabaseError as error:
            raise self._corrupt(error) from error
        finally:
            db.close()

    def _check(self, db: sqlite3.Connection, create: bool) -> None:
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        if create:
            with db:
                db.executescript(_SCHEMA)
                db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        columns = (
            {r[1] for r in db.execute("PRAGMA table_info(labels)")} if "labels" in tables else set()
        )
        version = (
            db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if "meta" in tables
            else None
        )
        if not set(_COLUMNS) <= columns or version is None:
            raise RunError(
                f"{self.path} is not an rlhf-eval labels file (no labels table with the "
                f"columns {', '.join(_COLUMNS)}). Fix: move it aside (it was left as it is) and "
                "start the labeling app again to create a new one."
            )
        if int(version[0]) > SCHEMA_VERSION:
            raise RunError(
                f"{self.path} has labels schema {version[0]}, newer than this rlhf-eval "
                f"understands ({SCHEMA_VERSION}). Fix: upgrade rlhf-eval."
            )

    def _corrupt(self, error: Exception) -> RunError:
        if "locked" in str(error):
            return RunError(
                f"{self.path} stayed locked by another process for 30 s ({error}). Fix: stop "
                "the other process using it (another labeling app, an export) and try again."
            )
        return RunError(
            f"{self.path} is corrupt or not an SQLite file ({error}). It holds the human labels "
            "and was left untouched. Fix: move it aside (mv labels.sqlite labels.sqlite.bad), "
            "try `sqlite3 labels.sqlite.bad .recover | sqlite3 labels.sqlite` to rescue its "
            "rows, then start again."
        )

    def save(self, labels: list[Label]) -> None:
        """Replace one labeler's labels of one prompt with `labels` (all K outputs at once)."""
        keys = {(x.task, x.labeler, x.doc_id) for x in labels}
        if len(keys) != 1:
            raise ValueError("save() takes the labels of one labeler for one prompt")
        task, labeler, doc_id = keys.pop()
        updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [
            (x.task, x.labeler, x.doc_id, x.model, x.likert, json.dumps(list(x.flags)), x.rank)
            + (x.prompt, x.output, updated)
            for x in labels
        ]
        with self._connect() as db, db:
            db.execute(
                "DELETE FROM labels WHERE task=? AND labeler=? AND doc_id=?",
                (task, labeler, doc_id),
            )
            db.executemany("INSERT INTO labels VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

    def labels(self, task: str, labeler: str | None = None) -> list[Label]:
        """Every label of a task entry (of one labeler), ordered by labeler, prompt and model."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM labels WHERE task=?"
        args: tuple = (task,)
        if labeler is not None:
            query, args = query + " AND labeler=?", (task, labeler)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY labeler, doc_id, model", args).fetchall()
        return [
            Label(t, lab, d, m, int(likert), tuple(json.loads(flags)), int(rank), p, o)
            for t, lab, d, m, likert, flags, rank, p, o in rows
        ]

    def labeled_docs(self, task: str, labeler: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT DISTINCT doc_id FROM labels WHERE task=? AND labeler=?", (task, labeler)
            ).fetchall()
        return {r[0] for r in rows}

    def labelers(self, task: str) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT DISTINCT labeler FROM labels WHERE task=? ORDER BY labeler", (task,)
            ).fetchall()
        return [r[0] for r in rows]
