"""The `paasta` group: subcommands are imported lazily so `paasta --help` stays fast.

Each subcommand lives in its own `cli/<name>_cmd.py` module; `COMMANDS` maps the command name to
``"module:attribute"``. Add a line here to register a new subcommand.
"""

from __future__ import annotations

import importlib

import click

from paasta_lite import __version__
from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaGroup

COMMANDS: dict[str, str] = {
    "mark-for-deployment": "paasta_lite.cli.mark_for_deployment_cmd:mark_for_deployment",
    "wait-for-deployment": "paasta_lite.cli.mark_for_deployment_cmd:wait_for_deployment_cmd",
    "start": "paasta_lite.cli.start_stop_cmd:start",
    "stop": "paasta_lite.cli.start_stop_cmd:stop",
    "restart": "paasta_lite.cli.start_stop_cmd:restart",
    "get-latest-deployment": "paasta_lite.cli.get_latest_deployment_cmd:get_latest_deployment",
    "validate": "paasta_lite.cli.validate_cmd:validate",
    "list": "paasta_lite.cli.list_cmd:list_services",
    "list-clusters": "paasta_lite.cli.list_cmd:list_clusters",
    "info": "paasta_lite.cli.list_cmd:info",
    "logs": "paasta_lite.cli.logs_cmd:logs",
    "render": "paasta_lite.cli.render_cmd:render",
    "status": "paasta_lite.cli.status_cmd:status",
}


class LazyGroup(PaastaGroup):
    """A group whose subcommands are imported only when listed or invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="paasta_lite")
def cli() -> None:
    """paasta_lite: deploy and inspect services described by soa-configs."""


def main() -> None:
    cli.main(prog_name="paasta")


if __name__ == "__main__":
    main()
