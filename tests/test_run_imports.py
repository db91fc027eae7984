"""What a run imports: never Flask. vLLM 0.32 registers its CPU kernels by probing every module
loaded in the process, and Flask's request proxies raise on that probe ("Working outside of
application context"), so a run that had imported the labeling app could not start a vLLM
engine. The labeling app is imported only by `rlhf-eval label`."""

from __future__ import annotations

import subprocess
import sys


def test_a_run_never_loads_flask():
    code = (
        "import sys\n"
        "import rlhf_eval.commands, rlhf_eval.runner, rlhf_eval.model_loading\n"
        "import rlhf_eval.tasks.reward_data, rlhf_eval.tasks.reward_model\n"
        "from rlhf_eval.planner import build_tasks\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug'))\n"
        "print(loaded)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_command_line_parses_without_loading_torch():
    """`rlhf-eval --help` and a mistyped argument answer at once: the commands (and torch) are
    imported only when one runs."""
    code = (
        "import sys\n"
        "from rlhf_eval.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, 'torch loaded'\n"
        "assert 'rlhf_eval.commands' not in sys.modules, 'commands loaded'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
