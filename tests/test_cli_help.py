"""Every sub-command's --help prints (argparse formats help texts with %, so a stray '%' in one breaks it)."""

from __future__ import annotations

import pytest

from precompute.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_prints_and_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out
