"""Shell completion for `paasta`: service, instance, cluster and deploy group names, from soa-configs.

The shell asks `paasta` itself (click's completion: `_PAASTA_COMPLETE=bash_source paasta` prints the
bash function, see the README), so every TAB starts `paasta`. To keep that as fast as an
interpreter that only imports click, completion never imports a command module (each pulls in
the config library: YAML, jsonschema, the Kubernetes client...). While click resolves the command
line for completion (`ctx.resilient_parsing`), `LazyGroup.get_command` returns `stand_in(name)`:
a command with the real one's options, built from `OPTIONS` (tests/test_cli_completion.py keeps
each entry equal to `spec_of(the real command)` and prints the line to paste when one changes).
An option's values complete by its parameter name (`COMPLETERS`), read by `config.soa_names`
from `-d/--soa-dir` (else `PAASTA_SOA_DIR`, else the default): services are directory names,
instances the keys of one `kubernetes-<cluster>.yaml` (all of the service's when no `-c`).
Comma-separated lists (`-i main,can<TAB>`) complete their last item.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS
from paasta_lite.cli.options import DEFAULT_SOA_DIR, SOA_DIR_ENV
from paasta_lite.config import soa_names

#: Each command's options as click parses them. One token per option: its flags joined by `/`;
#: `=name` when it takes a value (`name` is the parameter: it decides what completes), `*` when
#: repeatable, `{a,b}` for a fixed choice. Flags and counters have no `=`.
OPTIONS: dict[str, str] = {
    "get-latest-deployment": "-s/--service=service -l/-i/--deploy-group=group -j/--json "
    "-d/--soa-dir=soa_dir",
    "info": "-s/--service=service -d/--soa-dir=soa_dir",
    "list": "-i/--instances -c/--cluster=cluster -d/--soa-dir=soa_dir",
    "list-clusters": "-d/--soa-dir=soa_dir",
    "logs": "-s/--service=service -c/--cluster=cluster -i/--instance/--instances=instances "
    "-f/-F/--follow/--tail -l/-n/--lines=lines --since/-a/--from/--after=since "
    "-C/--components=components -d/--soa-dir=soa_dir --color/--colour=colour_mode{auto,always,never} "
    "--poll-interval=poll_interval",
    "mark-for-deployment": "-s/--service=service -l/--deploy-group=group -c/-k/--commit=commit "
    "-u/--git-url=git_url -i/--image-version=image_version --wait-for-deployment -t/--timeout=timeout "
    "--polling-interval=polling_interval -d/--soa-dir=soa_dir -v/--verbose",
    "render": "-s/--service=service -i/--instance=instances* -c/--cluster=cluster -d/--soa-dir=soa_dir "
    "-o/--output=output{yaml,json}",
    "restart": "-s/--service=service -c/--cluster=cluster -i/--instances=instances -d/--soa-dir=soa_dir",
    "start": "-s/--service=service -c/--cluster=cluster -i/--instances=instances -d/--soa-dir=soa_dir",
    "status": "-s/--service=service -i/--instances=instances -c/--clusters=clusters "
    "-l/--deploy-group=deploy_group -d/--soa-dir=soa_dir -v/--verbose -o/--output=output{text,json} "
    "--timeout=timeout --color/--colour=colour_mode{auto,always,never}",
    "stop": "-s/--service=service -c/--cluster=cluster -i/--instances=instances -d/--soa-dir=soa_dir",
    "validate": "-s/--service=service -a/--all -d/--soa-dir=soa_dir",
    "wait-for-deployment": "-s/--service=service -l/--deploy-group=group -c/-k/--commit=commit "
    "-u/--git-url=git_url -i/--image-version=image_version -t/--timeout=timeout "
    "--polling-interval=polling_interval -d/--soa-dir=soa_dir -v/--verbose",
}

_TOKEN = re.compile(r"^(?P<opts>[^=]+)(?:=(?P<name>\w+)(?P<multiple>\*)?(?:\{(?P<choices>[^}]*)\})?)?$")


def spec_of(command: click.Command) -> str:
    """`OPTIONS`' entry for a real command (what the tests compare)."""
    tokens = []
    for param in command.params:
        if not isinstance(param, click.Option) or param.secondary_opts or param.nargs != 1:
            raise ValueError(f"{command.name}: {param.name}: OPTIONS describes options of 0 or 1 value only")
        token = "/".join(param.opts)
        if not (param.is_flag or param.count):
            token += f"={param.name}" + ("*" if param.multiple else "")
            if isinstance(param.type, click.Choice):
                token += "{" + ",".join(map(str, param.type.choices)) + "}"
        tokens.append(token)
    return " ".join(tokens)


# --- what completes -------------------------------------------------------------------------


def _soa_dir(ctx: click.Context) -> str:
    return str(ctx.params.get("soa_dir") or os.environ.get(SOA_DIR_ENV) or DEFAULT_SOA_DIR)


def _listed(value: object) -> list[str]:
    """A comma-separated option value (or a repeated one) as a list."""
    items = value if isinstance(value, (list, tuple)) else [value] if value else []
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _services(ctx: click.Context) -> list[str]:
    return soa_names.service_names(_soa_dir(ctx))


def _clusters(ctx: click.Context) -> list[str]:
    return soa_names.cluster_names(_soa_dir(ctx), ctx.params.get("service") or None)


def _instances(ctx: click.Context) -> list[str]:
    service = ctx.params.get("service")
    if not service:
        return []
    clusters = _listed(ctx.params.get("cluster")) + _listed(ctx.params.get("clusters"))
    return soa_names.instance_names(_soa_dir(ctx), service, clusters)


def _deploy_groups(ctx: click.Context) -> list[str]:
    service = ctx.params.get("service")
    return soa_names.deploy_group_names(_soa_dir(ctx), service) if service else []


#: Parameter name -> the names its values complete from.
COMPLETERS: dict[str, Callable[[click.Context], list[str]]] = {
    "service": _services,
    "cluster": _clusters,
    "clusters": _clusters,
    "instances": _instances,
    "deploy_group": _deploy_groups,
    "group": _deploy_groups,
}

#: Values of these parameters are comma-separated lists: complete the last item.
COMMA_LISTS = frozenset({"clusters", "instances"})


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    names = COMPLETERS[str(param.name)](ctx)
    if param.name not in COMMA_LISTS or "," not in incomplete:
        return [name for name in names if name.startswith(incomplete)]
    done, _, last = incomplete.rpartition(",")
    taken = set(done.split(","))
    return [f"{done},{name}" for name in names if name.startswith(last) and name not in taken]


# --- the stand-in command -------------------------------------------------------------------


def _option(token: str) -> click.Option:
    match = _TOKEN.match(token)
    if match is None:
        raise ValueError(f"bad OPTIONS token {token!r}")
    opts = match["opts"].split("/")
    name = match["name"]
    if name is None:
        return click.Option(opts, is_flag=True)
    if name == "soa_dir":
        return click.Option([*opts, name], type=click.Path(file_okay=False))
    if match["choices"] is not None:
        return click.Option([*opts, name], type=click.Choice(match["choices"].split(",")),
                            multiple=bool(match["multiple"]))
    return click.Option([*opts, name], multiple=bool(match["multiple"]),
                        shell_complete=complete_names if name in COMPLETERS else None)


def stand_in(name: str, summary: str = "") -> click.Command | None:
    """A command that parses like the real `name` and completes soa-config names; never run."""
    spec = OPTIONS.get(name)
    if spec is None:
        return None
    params: list[click.Parameter] = [_option(token) for token in spec.split()]
    return click.Command(name, params=params, help=summary, context_settings=CONTEXT_SETTINGS)
