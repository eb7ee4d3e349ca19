"""The per-service loops of the playground: generate deployments.json, render (full or summary).

One service never stops the others, in `make` targets as in the entry points: every service
runs in its own process, a failure is reported and the loop goes on, and the exit status is 1
at the end when a service really failed (0 otherwise).

A service without `git_url` in its service.yaml (one you wrote by hand in soa_config_playground/,
as docs/playground.md shows) has no repository to read deploy tags from: generate skips it with
one line and its deployments.json is used as written. For every service that has a `git_url`,
generate rewrites deployments.json from the tags, so hand edits of that file do not survive.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pg_common import SOA_DIR, entry_point, relative, run, show

from paasta_lite.config.soa_config import SoaDir
from paasta_lite.errors import ConfigError

#: Runs one command (argv) and returns its exit status; tests pass their own.
Runner = Callable[[Sequence[str]], int]


def run_visible(argv: Sequence[str]) -> int:
    """Show the command, run it with its output passed through, return its exit status."""
    show(argv)
    return run(argv, check=False).returncode


@dataclass
class Tally:
    """What a loop did, service by service, for its closing line."""

    what: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{len(self.done)} done"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped ({', '.join(self.skipped)})")
        parts.append(f"{len(self.failed)} failed" + (f" ({', '.join(self.failed)})" if self.failed else ""))
        return f"{self.what}: " + ", ".join(parts)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def git_url_of(soa: SoaDir, service: str) -> tuple[bool, str | None]:
    """(loaded, git_url) from service.yaml; a service that does not load is (False, None)."""
    try:
        return True, soa.load_service(service, clusters=[], with_deployments=False).git_url
    except ConfigError:
        return False, None


def no_git_url_note(service: str, soa_dir: Path) -> str:
    deployments = soa_dir / service / "deployments.json"
    kept = (f"its {relative(deployments)} is used as written" if deployments.exists()
            else "it has no deployments.json, so nothing of it is deployed")
    return f"{service}: no git_url in service.yaml, so no deploy tags to read: not generated; {kept}"


def generate_all(soa_dir: Path = SOA_DIR, *, runner: Runner = run_visible) -> Tally:
    """`generate_deployments_for_service` for every service that has a git_url."""
    soa = SoaDir(str(soa_dir))
    tally = Tally("generate_deployments_for_service")
    for service in soa.list_services():
        loaded, git_url = git_url_of(soa, service)
        if loaded and not git_url:
            print(no_git_url_note(service, soa_dir), flush=True)
            tally.skipped.append(service)
            continue
        # A service that does not load still runs: generate names the file and the problem.
        argv = [entry_point("generate_deployments_for_service"), "-s", service, "-d", str(soa_dir), "-v"]
        (tally.failed if runner(argv) else tally.done).append(service)
    return tally


def summary_lines(service: str, document: Mapping[str, Any]) -> list[str]:
    """One line per object of a `paasta render -o json` List: kind, namespace/name, replicas, image."""
    lines = []
    for item in document.get("items") or ():
        metadata = item.get("metadata") or {}
        where = "/".join(part for part in (metadata.get("namespace"), metadata.get("name")) if part)
        line = f"{service}: {item.get('kind', '?')} {where}"
        spec = item.get("spec") or {}
        if "replicas" in spec:
            line += f"  replicas={spec['replicas']}"
        elif "maxReplicas" in spec:  # an HPA
            line += f"  replicas={spec.get('minReplicas', 1)}..{spec['maxReplicas']}"
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or ()
        images = sorted({str(container.get("image")) for container in containers})
        if images:
            line += f"  image={','.join(images)}"
        lines.append(line)
    return lines


def render_all(cluster: str, soa_dir: Path = SOA_DIR, *, summary: bool) -> Tally:
    """`paasta render` of every service: the full YAML, or (`summary`) one line per object."""
    tally = Tally("paasta render")
    for service in SoaDir(str(soa_dir)).list_services():
        argv = [entry_point("paasta"), "render", "-s", service, "-c", cluster, "-d", str(soa_dir)]
        if not summary:
            (tally.failed if run_visible(argv) else tally.done).append(service)
            continue
        done = run([*argv, "-o", "json"], check=False, capture=True)
        sys.stderr.write(done.stderr)
        if done.returncode:
            tally.failed.append(service)
            continue
        print("\n".join(summary_lines(service, json.loads(done.stdout))) or f"{service}: nothing to render")
        tally.done.append(service)
    return tally
