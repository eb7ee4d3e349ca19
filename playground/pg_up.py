"""`make playground`: the README's main command, as one plan run by one `make` invocation.

The plan is pure data (`plan_stages`): the offline stages always run (configs, local git repos
and deploy tags, deployments.json, validate, render); the cluster stages (Kind cluster, image,
deploy, wait for healthy + `paasta status`) run only when a cluster can be had: your KUBECONFIG
answers, or a container engine answers and kind is installed. Stages whose entry point is not in
this checkout yet are skipped and named. Each stage is a make target, so the commands are written
once, in the Makefile, and `make -n <target>` shows them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from pg_cluster import kind_script, resolve
from pg_common import SOA_DIR, Names, entry_point, missing_entry_point, playground_env, run, show

from paasta_lite.config.soa_config import SoaDir
from paasta_lite.status.instance_status import UNREACHABLE_GIVE_UP_S


@dataclass(frozen=True)
class Stage:
    target: str
    what: str
    needs: tuple[str, ...] = ()
    cluster: bool = False


STAGES = (
    Stage("playground-repos", "configs, local git repositories and deploy tags"),
    Stage("generate_deployments_for_service", "deployments.json for every service",
          ("generate_deployments_for_service",)),
    Stage("playground-validate", "paasta validate --all"),
    Stage("playground-render", "paasta render of every service", ("paasta render",)),
    Stage("k8s_fake_cluster", "the Kind cluster (or your KUBECONFIG's)", cluster=True),
    Stage("playground-image", "sample images built and loaded into Kind",
          ("generate_deployments_for_service",), cluster=True),
    Stage("setup-kubernetes-job", "deploy with setup_kubernetes_job",
          ("generate_deployments_for_service", "setup_kubernetes_job"), cluster=True),
    Stage("playground-wait", "wait until healthy, then paasta status", ("paasta status",), cluster=True),
)


@dataclass(frozen=True)
class Plan:
    run: tuple[Stage, ...]
    skipped: tuple[tuple[Stage, str], ...]  # (stage, why)


def plan_stages(*, cluster_reason: str | None, missing: Callable[[str], str | None],
                stages: tuple[Stage, ...] = STAGES) -> Plan:
    """Which stages run: `cluster_reason` is why there is no cluster (None: there is one)."""
    to_run: list[Stage] = []
    skipped: list[tuple[Stage, str]] = []
    for stage in stages:
        why = next((reason for reason in map(missing, stage.needs) if reason), None)
        if why is None and stage.cluster and cluster_reason is not None:
            why = "no cluster"
        if why is None and stage.cluster and any(s.cluster for s, _ in skipped):
            why = "an earlier cluster stage was skipped"
        if why:
            skipped.append((stage, why))
        else:
            to_run.append(stage)
    return Plan(tuple(to_run), tuple(skipped))


def cluster_unavailable(names: Names) -> tuple[str | None, str]:
    """(None, how) when a cluster can be had, else (why not, the exact fix)."""
    if os.environ.get("PLAYGROUND_OFFLINE") == "1":
        return "PLAYGROUND_OFFLINE=1 is set", "unset PLAYGROUND_OFFLINE"
    resolution = resolve(names)
    if resolution.source == "user":
        return None, resolution.message
    done = kind_script("check", capture=True)
    if done.returncode == 0:
        return None, resolution.message
    note = "" if not os.environ.get("KUBECONFIG") else resolution.message + "\n"
    return "no container engine / kind", note + done.stderr.strip()


def summary(plan: Plan, cluster_reason: str | None, fix: str) -> str:
    lines = ["", "make playground: summary"]
    lines += [f"  done     {stage.what}  (make {stage.target})" for stage in plan.run]
    lines += [f"  skipped  {stage.what}  (make {stage.target}): {why}" for stage, why in plan.skipped]
    if cluster_reason is not None:
        lines += ["", f"No cluster, so the deploy was skipped ({cluster_reason}). To get one:",
                  *[f"  {line}" for line in fix.splitlines()],
                  "then run `make playground` again. `make playground-status` shows what is ready."]
    return "\n".join(lines)


def up(names: Names, make: str) -> int:
    cluster_reason, fix = cluster_unavailable(names)
    print(fix if cluster_reason is None else f"Offline playground: {cluster_reason}.", flush=True)
    plan = plan_stages(cluster_reason=cluster_reason, missing=missing_entry_point)
    argv = [make, "--no-print-directory", *[stage.target for stage in plan.run]]
    show(argv)
    done = subprocess.run(argv, check=False)
    if done.returncode != 0:
        print("\nmake playground failed (see the error above); `make playground-status` shows what is ready.")
        return 1
    print(summary(plan, cluster_reason, fix))
    return 0


def status_errors(done: subprocess.CompletedProcess[str]) -> tuple[list[str], set[str]]:
    """The error lines of one `paasta status -o json` run, and their failure kinds."""
    try:
        report = json.loads(done.stdout)
    except ValueError:  # a usage error: printed on stderr, exit 2
        text = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
        return [text], {"permanent"} if done.returncode == 2 else set()
    rows = [row for row in report.get("instances", []) if "error" in row]
    lines = [f"{row['service']}.{row['instance']} in {row['cluster']}: {row['error']}" for row in rows]
    return lines, {str(row.get("failure")) for row in rows}


def wait_healthy(names: Names, timeout_s: float, interval_s: float = 5.0) -> int:
    """Poll `paasta status` of every playground service until all are healthy; show it at the end.

    Stops at once (exit 2) when `paasta status` exits 2 (no kubeconfig, an unknown cluster, 401/403,
    invalid config: asking again will not help), and after `UNREACHABLE_GIVE_UP_S` of "connection
    refused"; anything else is polled until `timeout_s`.
    """
    kubeconfig = resolve(names).kubeconfig
    env = playground_env(kubeconfig)
    services = SoaDir(str(SOA_DIR)).list_services()
    deadline = time.monotonic() + timeout_s
    base = [entry_point("paasta"), "status", "-c", names.paasta_cluster]
    pending = list(services)
    silent_since: dict[str, float] = {}
    print(f"Waiting up to {timeout_s:.0f}s for {', '.join(services)} to be healthy ...", flush=True)
    while pending and time.monotonic() < deadline:
        still = []
        for service in pending:
            done = run([*base, "-s", service, "-o", "json"], env=env, check=False, capture=True)
            if done.returncode == 0:
                silent_since.pop(service, None)
                continue
            errors, kinds = status_errors(done)
            silent = 0.0
            if kinds == {"unreachable"}:  # nothing listens there: give it a while, not the whole wait
                silent = time.monotonic() - silent_since.setdefault(service, time.monotonic())
            else:
                silent_since.pop(service, None)
            if done.returncode == 2 or silent >= UNREACHABLE_GIVE_UP_S:
                print("\nStopped waiting: waiting will not fix this.", *errors, sep="\n  ")
                return 2
            still.append(service)
        pending = still
        if pending:
            time.sleep(interval_s)
    worst = 0
    for service in services:
        show([*base, "-s", service])
        worst = max(worst, run([*base, "-s", service], env=env, check=False).returncode)
    if worst:
        print(f"\nNot healthy after {timeout_s:.0f}s. Look closer with `paasta status -s <service> -vv` "
              "(after `eval \"$(make -s playground-env)\"`) or `make playground-status`.")
    return worst
