"""rlhf_train and rlhf_eval never import each other, and rlhf_common imports neither: every import
statement of every module, those inside functions included, read from the source's syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "rlhf_train": {"rlhf_eval"},
    "rlhf_eval": {"rlhf_train"},
    "rlhf_common": {"rlhf_eval", "rlhf_train"},
}
"""For each package, the packages it must not import."""


def imported_modules(path: Path, package_root: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file: `import a.b`, `from a.b import c` (relative ones
    resolved against the file's package), and importlib.import_module / __import__ of a literal."""
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    package = parts[:-1]  # what `from .` means here (a package's __init__ is in its own folder)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.append((node.lineno, ".".join([*base, *filter(None, [node.module])])))
            else:
                found.append((node.lineno, node.module or ""))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def boundary_violations(root: Path) -> list[str]:
    """`file:line imports module` for every import across a forbidden boundary under root."""
    problems = []
    for package, forbidden in FORBIDDEN.items():
        package_root = root / package
        for path in sorted(package_root.rglob("*.py")):
            for line, module in imported_modules(path, package_root):
                if module.split(".")[0] in forbidden:
                    where = path.relative_to(root)
                    problems.append(f"{where}:{line} imports {module}")
    return problems


def test_packages_do_not_import_across_the_boundary():
    assert all((ROOT / package).is_dir() for package in FORBIDDEN)
    assert boundary_violations(ROOT) == []


@pytest.mark.parametrize(
    ("package", "source", "module"),
    [
        ("rlhf_train", "def f():\n    from rlhf_eval.stats import wilson\n", "rlhf_eval.stats"),
        ("rlhf_eval", "import rlhf_train.cli as cli\n", "rlhf_train.cli"),
        ("rlhf_common", "import importlib\nimportlib.import_module('rlhf_eval')\n", "rlhf_eval"),
        ("rlhf_common", "from rlhf_train import data\n", "rlhf_train"),
    ],
)
def test_a_planted_import_is_found(tmp_path, package, source, module):
    for name in FORBIDDEN:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / package / "planted.py").write_text(source)
    (line,) = boundary_violations(tmp_path)
    assert line.startswith(f"{package}/planted.py:") and line.endswith(f"imports {module}")


def test_relative_imports_resolve_within_their_package(tmp_path):
    for name in FORBIDDEN:
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "rlhf_common" / "sub" / "__init__.py").write_text("from .. import errors\n")
    (tmp_path / "rlhf_common" / "sub" / "a.py").write_text("from ..errors import DataError\n")
    path = tmp_path / "rlhf_common" / "sub" / "a.py"
    assert imported_modules(path, tmp_path / "rlhf_common") == [(1, "rlhf_common.errors")]
    init = tmp_path / "rlhf_common" / "sub" / "__init__.py"
    assert imported_modules(init, tmp_path / "rlhf_common") == [(1, "rlhf_common")]
    assert boundary_violations(tmp_path) == []
