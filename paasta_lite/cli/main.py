"""The `paasta` group: subcommands are imported lazily so `paasta --help` stays fast.

Each subcommand lives in its own `cli/<name>_cmd.py` module; `COMMANDS` maps the command name to
``"module:attribute"``. To register a new subcommand add a line here, one to `SUMMARIES`, and one
to `cli/completion.py`'s `OPTIONS` (shell completion parses with it; the tests say what to paste).
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


#: One line per command for `paasta --help`, so listing them imports none of their modules
#: (tests/test_cli_help.py keeps each line equal to its command's own short help).
SUMMARIES: dict[str, str] = {
    "get-latest-deployment": "Print the git sha deployed to a deploy group.",
    "info": "Describe a service from its soa-configs: metadata, pipeline, instances per cluster.",
    "list": "List the services in the soa dir (or their instances with -i).",
    "list-clusters": "List every cluster any service has a kubernetes-<cluster>.yaml for.",
    "logs": "Show a service's container output and deploy events, merged in time order.",
    "mark-for-deployment": "Deploy COMMIT to a deploy group by pushing a deploy tag.",
    "render": "Print the Namespace, Deployment(s), HPA(s) and PDB(s) setup_kubernetes_job would apply.",
    "restart": "Restart instances (replace every pod) by pushing a fresh start tag.",
    "start": "Start instances (undo a stop) by pushing a start tag on the deployed sha.",
    "status": "Show what is running for a service: version, state, health, and why when not.",
    "stop": "Stop instances (0 replicas) by pushing a stop tag on the deployed sha.",
    "validate": "Check soa-configs the way every paasta_lite command loads them.",
    "wait-for-deployment": "Wait until every instance of a deploy group runs COMMIT.",
}


class LazyGroup(PaastaGroup):
    """A group whose subcommands are imported only when invoked (listing uses `SUMMARIES`)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUMMARIES.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        if ctx.resilient_parsing:
            # Shell completion (every TAB runs paasta): a stand-in with the same options, so the
            # command's module and the config library behind it are never imported.
            from paasta_lite.cli.completion import stand_in

            return stand_in(cmd_name, SUMMARIES.get(cmd_name, ""))
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
