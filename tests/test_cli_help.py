"""Every command's --help renders (argparse formats help strings with %)."""

from __future__ import annotations

import pytest

from rlhf_eval.cli import _parser, main


def _commands() -> list[str]:
    parser = _parser()
    (subparsers,) = [a for a in parser._actions if a.choices and isinstance(a.choices, dict)]
    return sorted(subparsers.choices)


@pytest.mark.parametrize("command", [None, *_commands()])
def test_help_renders(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--help"] if command is None else [command, "--help"])
    assert stopped.value.code == 0
    assert "usage: rlhf-eval" in capsys.readouterr().out
