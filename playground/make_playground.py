"""The playground's helper commands; the Makefile calls them (`make help` lists the targets).

Subcommands (each small; the logic lives in the pg_*.py modules next to this file):
  configs     create etc_paasta_playground/ and soa_config_playground/ from templates if missing
  services    list the playground services (every directory in soa_config_playground/)
  repos       configs, then a local git repository with a deploy tag per deploy group per service
  generate    generate_deployments_for_service for every service with a git_url (one failure
              never stops the others; exit 1 at the end if one failed)
  render      paasta render of every service (--summary: one line per object instead of YAML)
  kubeconfig  print the kubeconfig the playground uses (your KUBECONFIG if it answers, else Kind's)
  require     check that entry points are in this checkout (exit 3 and say which issue builds them)
  image       build the deployed images of the sample services and load them into Kind
  wait        wait until every playground service is healthy, then show `paasta status`
  status      what is ready and what is missing, each with the command that fixes it
  env         export lines for `eval "$(make -s playground-env)"`
  forget-api  drop the playground cluster's entry from api_endpoints.json if its API is gone
  up          `make playground`: everything that can run here, then a summary
"""

from __future__ import annotations

import argparse
import os
import sys

from pg_common import NOT_LANDED, SOA_DIR, Names, relative

from paasta_lite.errors import ConfigError


def cmd_configs(names: Names, args: argparse.Namespace) -> int:
    from pg_configs import create_configs

    written = create_configs(args.cluster or names.paasta_cluster)
    for path in written:
        print(f"created {relative(path)}")
    if not written:
        print("playground configs already exist (`make clean-playground` starts over)")
    return 0


def cmd_services(names: Names, args: argparse.Namespace) -> int:
    from paasta_lite.config.soa_config import SoaDir

    print("\n".join(SoaDir(str(SOA_DIR)).list_services()))
    return 0


def cmd_repos(names: Names, args: argparse.Namespace) -> int:
    from pg_repos import ensure_repo

    from paasta_lite.config.soa_config import SoaDir

    cmd_configs(names, args)
    soa = SoaDir(str(SOA_DIR))
    for name in soa.list_services():
        try:
            service = soa.load_service(name, with_deployments=False)
        except ConfigError as error:
            # Not this step's failure to report: generate and validate name the problem.
            print(f"{name}: cannot be loaded ({error.problems[0]}); no repository made")
            continue
        print(ensure_repo(service).describe())
    return 0


def cmd_generate(names: Names, args: argparse.Namespace) -> int:
    from pg_services import generate_all

    tally = generate_all()
    print(tally.line())
    return tally.exit_code


def cmd_render(names: Names, args: argparse.Namespace) -> int:
    from pg_services import render_all

    tally = render_all(args.cluster or names.paasta_cluster, summary=args.summary)
    if args.summary or tally.failed:
        print(tally.line() + ("" if not args.summary else "   (full YAML: make playground-render)"))
    return tally.exit_code


def cmd_kubeconfig(names: Names, args: argparse.Namespace) -> int:
    from pg_cluster import probe, resolve

    resolution = resolve(names)
    if args.announce_user_cluster:
        if resolution.source == "user" or os.environ.get("KUBECONFIG"):
            print(resolution.message)
        return 0 if resolution.source == "user" else 1
    if args.check:
        result = probe(resolution.kubeconfig)
        if not result.ok:
            print(f"ERROR: the cluster of {resolution.kubeconfig} does not answer: {result.detail}\n"
                  "Fix: make k8s_recreate_cluster   (or check KUBECONFIG)", file=sys.stderr)
            return 1
        print(f"cluster answers: {result.detail}")
        return 0
    print(resolution.kubeconfig)
    return 0


def cmd_require(names: Names, args: argparse.Namespace) -> int:
    from pg_common import missing_entry_point

    problems = [why for why in map(missing_entry_point, args.entry_points) if why]
    for why in problems:
        print(f"NOT AVAILABLE: {why}. Update this checkout (git pull) and run `make dev`.", file=sys.stderr)
    return NOT_LANDED if problems else 0


def cmd_image(names: Names, args: argparse.Namespace) -> int:
    from pg_cluster import (
        build_image,
        buildable,
        container_engine,
        image_jobs,
        image_present,
        load_images,
        resolve,
    )

    from paasta_lite.config.system_config import load_system_config

    resolution = resolve(names)
    engine, fix = container_engine()
    if engine is None:
        if resolution.source == "kind":
            print(fix, file=sys.stderr)
            return 1
        print(f"WARNING: cannot build images here; pods will only start if their images are pullable.\n{fix}")
        return 0
    jobs, notes = image_jobs(load_system_config(os.environ.get("PAASTA_SYSTEM_CONFIG_DIR")))
    for note in notes:
        print(note)
    ready = []
    for job in jobs:
        why = buildable(job)
        if why:
            print(why)
            continue
        if image_present(engine, job.image):
            print(f"{job.image}: already built")
        else:
            build_image(engine, job)
        ready.append(job.image)
    load_images(ready, resolution)
    return 0


def cmd_wait(names: Names, args: argparse.Namespace) -> int:
    from pg_up import wait_healthy

    return wait_healthy(names, args.timeout)


def cmd_status(names: Names, args: argparse.Namespace) -> int:
    from pg_status import status_report

    checks = status_report(names)
    print(f"paasta_lite playground (cluster {names.paasta_cluster})")
    for check in checks:
        print(check.render())
    missing = sum(check.state == "missing" for check in checks)
    print(f"\n{missing} item(s) missing." if missing else "\nEverything is ready.")
    return 0


def cmd_env(names: Names, args: argparse.Namespace) -> int:
    from pg_cluster import resolve
    from pg_status import env_lines

    print("\n".join(env_lines(names, resolve(names))))
    return 0


def cmd_forget_api(names: Names, args: argparse.Namespace) -> int:
    from pg_status import ApiStillAnswers, forget_api

    try:
        removed = forget_api(names.paasta_cluster)
    except ApiStillAnswers as live:
        print(f"kept {names.paasta_cluster} in etc_paasta_playground/api_endpoints.json: the API at "
              f"{live.url} answers (stop it with Ctrl-C in its terminal; it then removes its own entry)")
        return 0
    if removed:
        print(f"removed {names.paasta_cluster} ({removed}, which no longer answers) from "
              "etc_paasta_playground/api_endpoints.json")
    return 0


def cmd_up(names: Names, args: argparse.Namespace) -> int:
    from pg_up import up

    return up(names, os.environ.get("MAKE", "make"))


COMMANDS = {
    "configs": cmd_configs, "services": cmd_services, "repos": cmd_repos, "generate": cmd_generate,
    "render": cmd_render, "kubeconfig": cmd_kubeconfig,
    "require": cmd_require, "image": cmd_image, "wait": cmd_wait, "status": cmd_status, "env": cmd_env,
    "forget-api": cmd_forget_api, "up": cmd_up,
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        command = sub.add_parser(name)
        if name in ("configs", "repos", "render"):
            command.add_argument("--cluster", help="PaaSTA cluster name (default: $PLAYGROUND_CLUSTER)")
        if name == "render":
            command.add_argument("--summary", action="store_true",
                                 help="one line per object (kind, namespace/name, replicas, image)")
        if name == "kubeconfig":
            command.add_argument("--announce-user-cluster", action="store_true",
                                 help="exit 0 (and say so) when your KUBECONFIG's cluster answers, else 1")
            command.add_argument("--check", action="store_true", help="fail unless the cluster answers")
        if name == "require":
            command.add_argument("entry_points", nargs="+")
        if name == "wait":
            command.add_argument("--timeout", type=float,
                                 default=float(os.environ.get("PLAYGROUND_WAIT_S", 180)))
    return top


def main() -> int:
    args = parser().parse_args()
    return COMMANDS[args.command](Names.from_env(), args)


if __name__ == "__main__":
    sys.exit(main())
