"""`paasta --help` lists commands from a static table (fast); it must agree with the commands."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from paasta_lite.cli.main import COMMANDS, SUMMARIES, cli


def test_every_command_has_a_summary_that_starts_its_own_help() -> None:
    assert set(SUMMARIES) == set(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        first_line = (command.help or "").strip().splitlines()[0].rstrip(".")
        summary = SUMMARIES[name].rstrip(".")
        assert first_line.startswith(summary.split(" (")[0].split(";")[0][:40]), (name, first_line)


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name, summary in SUMMARIES.items():
        assert name in result.output and summary[:30] in result.output


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys; from paasta_lite.cli.main import cli; "
        "cli.main(['--help'], standalone_mode=False); "
        "heavy = ('kubernetes', 'jsonschema'); "
        "print(sorted(m for m in sys.modules if m.endswith('_cmd') or m.startswith(heavy)))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().splitlines()[-1] == "[]"
