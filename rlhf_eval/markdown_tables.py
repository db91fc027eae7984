"""GitHub-flavoured markdown tables: a row type, a cell made safe, a table. The report and the
labels summary build their tables with these."""

from __future__ import annotations

import re

Row = dict[str, str]


def escape_cell(text: object) -> str:
    """Make text safe inside a GFM table cell: escape pipes, fold newlines into spaces."""
    s = str(text).replace("\\|", "\\\\|").replace("|", "\\|")
    return re.sub(r"\s*(?:\r\n|\r|\n)\s*", " ", s).strip()


def markdown_table(columns: tuple[str, ...], rows: list[Row]) -> str:
    """A GFM table; every cell is escaped, numeric-looking columns are right-aligned."""
    right = {"value", "95% CI", "n", "failed", "delta", "wall time"}
    lines = [
        "| " + " | ".join(escape_cell(c) for c in columns) + " |",
        "|" + "|".join("---:" if c in right else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(escape_cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
