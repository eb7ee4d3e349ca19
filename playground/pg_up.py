"""`make playground`: the README's main command, as a plan of `make` targets run one by one.

The plan is pure data (`plan_stages`): the offline stages always run (configs, local git repos
and deploy tags, deployments.json, validate, a one-line-per-object render summary); the cluster
stages (Kind cluster, image, deploy, wait for healthy + `paasta status`) run only when a cluster
can be had: your KUBECONFIG answers, or a container engine answers and kind is installed. The
image stage also needs a container engine to build with. Stages whose entry point is not in
this checkout yet are skipped and named. Each stage is a make target, so the commands are
written once, in the Makefile, and `make -n <target>` shows them.

Stages run one `make` each, with the targets already run marked done (`make -o`), so nothing
runs twice. A failed stage does not stop the ones after it (a broken service must not keep the
others from being deployed), except the stages that cannot work without it (`BLOCKS`); the
summary says done, failed or skipped (and why) for every stage, and the exit status is 1 when
one failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from pg_cluster import container_engine, kind_script, resolve
from pg_common import SOA_DIR, Names, entry_point, missing_entry_point, playground_env, run, show

from paasta_lite.config.soa_config import SoaDir
from paasta_lite.status.instance_status import UNREACHABLE_GIVE_UP_S


@dataclass(frozen=True)
class Stage:
    target: str
    what: str
    needs: tuple[str, ...] = ()
    cluster: bool = False
    image: bool = False  # builds images: needs a container engine
    also_makes: tuple[str, ...] = ()  # targets this one's run counts for (not run again after it)


STAGES = (
    Stage("playground-repos", "configs, local git repositories and deploy tags",
          also_makes=("playground-configs",)),
    Stage("generate_deployments_for_service", "deployments.json for every service with a git_url",
          ("generate_deployments_for_service",), also_makes=("playground-generated",)),
    Stage("playground-validate", "paasta validate --all"),
    Stage("playground-render-summary", "paasta render, one line per object (full YAML: make "
          "playground-render)", ("paasta render",)),
    Stage("k8s_fake_cluster", "the Kind cluster (or your KUBECONFIG's)", cluster=True),
    Stage("playground-image", "sample images built and loaded into Kind",
          ("generate_deployments_for_service",), cluster=True, image=True),
    Stage("setup-kubernetes-job", "deploy with setup_kubernetes_job",
          ("generate_deployments_for_service", "setup_kubernetes_job"), cluster=True),
    Stage("playground-wait", "wait until healthy, then paasta status", ("paasta status",), cluster=True),
)

#: A failed stage -> the later stages that cannot work without it (the others still run).
BLOCKS = {
    "k8s_fake_cluster": ("playground-image", "setup-kubernetes-job", "playground-wait"),
    "setup-kubernetes-job": ("playground-wait",),
}


@dataclass(frozen=True)
class Plan:
    run: tuple[Stage, ...]
    skipped: tuple[tuple[Stage, str], ...]  # (stage, why)


def plan_stages(*, cluster_reason: str | None, missing: Callable[[str], str | None],
                image_reason: str | None = None, stages: tuple[Stage, ...] = STAGES) -> Plan:
    """Which stages run: `cluster_reason` is why there is no cluster, `image_reason` why images
    cannot be built here (None: there is one / they can)."""
    to_run: list[Stage] = []
    skipped: list[tuple[Stage, str]] = []
    for stage in stages:
        why = next((reason for reason in map(missing, stage.needs) if reason), None)
        if why is None and stage.cluster and cluster_reason is not None:
            why = "no cluster"
        if why is None and stage.image and image_reason is not None:
            why = image_reason
        if why is None and stage.cluster and any(s.cluster and not s.image for s, _ in skipped):
            why = "an earlier cluster stage was skipped"
        if why:
            skipped.append((stage, why))
        else:
            to_run.append(stage)
    return Plan(tuple(to_run), tuple(skipped))


def blocked_by(stage: Stage, failed: list[str]) -> str | None:
    """The failed stage `stage` cannot run without, or None."""
    return next((target for target in failed if stage.target in BLOCKS.get(target, ())), None)


def make_argv(make: str, stage: Stage, already: list[Stage]) -> list[str]:
    """`make <stage>`, with every target an earlier stage ran (or counts for) marked done."""
    old = [target for earlier in already for target in (earlier.target, *earlier.also_makes)]
    return [make, "--no-print-directory", *[arg for target in old for arg in ("-o", target)], stage.target]


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


def image_unavailable(cluster_reason: str | None) -> str | None:
    """Why the image stage cannot build here (None: a container engine answers)."""
    if cluster_reason is not None:
        return None  # the cluster stages are skipped anyway
    engine, _ = container_engine()
    if engine is not None:
        return None
    return ("no container engine answers (docker/podman), so no image can be built here; pods start "
            "only if their images are pullable (`make k8s-check-tools` says how to get one)")


@dataclass(frozen=True)
class Outcome:
    stage: Stage
    state: str  # done | failed | skipped
    why: str = ""


def summary(outcomes: list[Outcome], cluster_reason: str | None, fix: str) -> str:
    lines = ["", "make playground: summary"]
    for outcome in outcomes:
        why = f": {outcome.why}" if outcome.why else ""
        lines.append(f"  {outcome.state:8s} {outcome.stage.what}  (make {outcome.stage.target}){why}")
    if cluster_reason is not None:
        lines += ["", f"No cluster, so the deploy was skipped ({cluster_reason}). To get one:",
                  *[f"  {line}" for line in fix.splitlines()],
                  "then run `make playground` again. `make playground-status` shows what is ready."]
    if any(outcome.state == "failed" for outcome in outcomes):
        lines += ["", "Some stages failed; one service's failure does not stop the others. "
                  "`make playground-status` shows what is ready."]
    return "\n".join(lines)


def run_plan(plan: Plan, make: str, run_make: Callable[[list[str]], int]) -> list[Outcome]:
    """Run each stage in order; a failed stage skips only the stages it `BLOCKS`."""
    outcomes: list[Outcome] = []
    already: list[Stage] = []
    failed: list[str] = []
    for stage in plan.run:
        blocker = blocked_by(stage, failed)
        if blocker is not None:
            outcomes.append(Outcome(stage, "skipped", f"make {blocker} failed"))
            continue
        argv = make_argv(make, stage, already)
        show([make, stage.target])  # the -o flags only keep earlier stages from running again
        code = run_make(argv)
        already.append(stage)
        if code:
            failed.append(stage.target)
        outcomes.append(Outcome(stage, "failed" if code else "done", "its errors are above" if code else ""))
    outcomes += [Outcome(stage, "skipped", why) for stage, why in plan.skipped]
    order = {stage: index for index, stage in enumerate(STAGES)}
    return sorted(outcomes, key=lambda outcome: order.get(outcome.stage, len(order)))


def up(names: Names, make: str) -> int:
    cluster_reason, fix = cluster_unavailable(names)
    print(fix if cluster_reason is None else f"Offline playground: {cluster_reason}.", flush=True)
    plan = plan_stages(cluster_reason=cluster_reason, missing=missing_entry_point,
                       image_reason=image_unavailable(cluster_reason))
    outcomes = run_plan(plan, make, lambda argv: subprocess.run(argv, check=False).returncode)
    print(summary(outcomes, cluster_reason, fix))
    return 1 if any(outcome.state == "failed" for outcome in outcomes) else 0


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
