"""Click plumbing shared by `paasta` and the standalone entry points.

`PaastaCommand` / `PaastaGroup` turn a `PaastaLiteError` into one message on stderr and the
error's exit code, so no code below the edge ever calls `sys.exit`. Commands that need a
non-zero exit without an error (e.g. `validate` found problems) call ``ctx.exit(code)``.
"""

from __future__ import annotations

import os
from typing import Any

import click

from paasta_lite.errors import ConfigError, PaastaLiteError

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def report_error(error: PaastaLiteError) -> int:
    """Print a user-facing error once, to stderr, and return its exit code.

    Red only on a terminal (click strips styles otherwise) and never when NO_COLOR is set.
    """
    colour = False if os.environ.get("NO_COLOR") else None
    if isinstance(error, ConfigError):
        headline = f"error: {len(error.problems)} configuration problem(s):"
        click.secho(headline, fg="red", err=True, color=colour)
        for problem in error.problems:
            click.echo(f"  - {problem}", err=True)
    else:
        click.secho(f"error: {error}", fg="red", err=True, color=colour)
    return error.exit_code


class PaastaCommand(click.Command):
    """A click command whose expected errors become a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PaastaLiteError as error:
            ctx.exit(report_error(error))


class PaastaGroup(click.Group):
    """A click group with the same error handling as `PaastaCommand`."""

    command_class = PaastaCommand

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PaastaLiteError as error:
            ctx.exit(report_error(error))
