"""Options shared by every command, defined once so flags mean the same thing everywhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

DEFAULT_SOA_DIR = "/nail/etc/services"
SOA_DIR_ENV = "PAASTA_SOA_DIR"

F = TypeVar("F", bound=Callable[..., Any])


def soa_dir_option(function: F) -> F:
    """`-d/--soa-dir`, overridable with `PAASTA_SOA_DIR`, default `/nail/etc/services`."""
    return click.option(
        "-d",
        "--soa-dir",
        "soa_dir",
        default=DEFAULT_SOA_DIR,
        envvar=SOA_DIR_ENV,
        show_default=True,
        show_envvar=True,
        type=click.Path(file_okay=False),
        help="Directory of soa-configs (one folder per service).",
    )(function)


def service_option(required: bool = True) -> Callable[[F], F]:
    """`-s/--service`."""

    def decorate(function: F) -> F:
        return click.option(
            "-s", "--service", "service", required=required, help="Name of the service."
        )(function)

    return decorate


def cluster_option(
    help_text: str = "Cluster (default: `cluster` from the system config).",
) -> Callable[[F], F]:
    """`-c/--cluster`."""

    def decorate(function: F) -> F:
        return click.option("-c", "--cluster", "cluster", default=None, help=help_text)(function)

    return decorate


def verbose_option(function: F) -> F:
    """`-v`, counted (`-vv` is more verbose)."""
    return click.option("-v", "--verbose", "verbose", count=True, help="More output; repeat for more.")(
        function
    )


def colour_option(function: F) -> F:
    """`--color/--colour auto|always|never`, as parameter `colour_mode`."""
    return click.option(
        "--color",
        "--colour",
        "colour_mode",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        show_default=True,
        help="Colour the output (auto: only on a terminal, and never when NO_COLOR is set).",
    )(function)


def wants_colour(mode: str, *, isatty: bool, no_colour_env: str | None) -> bool:
    """``auto`` colours only a terminal, and never when ``NO_COLOR`` is set non-empty."""
    if mode == "always":
        return True
    return mode == "auto" and isatty and not no_colour_env


def stdout_wants_colour(mode: str) -> bool:
    """`wants_colour` for this process's stdout and environment."""
    return wants_colour(mode, isatty=sys.stdout.isatty(), no_colour_env=os.environ.get("NO_COLOR"))


def reconciler_write_options(function: F) -> F:
    """`--concurrency`, `--deadline`, `--lock-timeout`: how the reconcilers write (one run budget
    for the run, see `kube/run_budget.py`; one lock per cluster, see `kube/run_lock.py`)."""
    function = click.option(
        "--lock-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
        help="Seconds to wait for another run's lock (the cluster's Lease) before giving up (exit 1).",
    )(function)
    function = click.option(
        "--deadline", type=click.FloatRange(min=1), default=600.0, show_default=True,
        help="Seconds this run may spend writing; what is left then is reported as not attempted.",
    )(function)
    return click.option(
        "--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
        help="Writes in flight at once (a namespace is always created before its apps).",
    )(function)
