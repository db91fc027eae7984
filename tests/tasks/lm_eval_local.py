"""lm-evaluation-harness's own requests for its task YAMLs on local data files, so prompt tests
compare against lm-eval itself rather than against a copy of its strings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


def lm_eval_requests(folder: Path, data: dict[str, Path]) -> dict[str, list[tuple[str, dict]]]:
    """For each lm-eval task YAML (a path under lm_eval/tasks/) reading its local JSON-lines
    file as the test split: (context, generation kwargs) per document, in file order. One
    TaskManager loads them all (its index takes seconds). Skips when lm-eval is absent."""
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    names = {}
    for task_yaml, path in data.items():
        name = "local_" + task_yaml.removesuffix(".yaml").replace("/", "_").replace("-", "_")
        names[task_yaml] = name
        (folder / f"{name}.yaml").write_text(
            textwrap.dedent(f"""\
            include: {Path(lm_eval.__file__).parent / "tasks" / task_yaml}
            task: {name}
            dataset_path: json
            dataset_name: null
            dataset_kwargs:
              data_files:
                test: {path}
            """)
        )
    tasks = TaskManager(include_path=str(folder)).load(list(names.values()))["tasks"]
    requests = {}
    for task_yaml, name in names.items():
        tasks[name].build_all_requests(rank=0, world_size=1)
        instances = sorted(tasks[name].instances, key=lambda i: i.doc_id)
        requests[task_yaml] = [i.args for i in instances]
    return requests
