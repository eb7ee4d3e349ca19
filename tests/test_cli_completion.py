"""Shell completion of `paasta`: names from soa-configs, fast because nothing heavy is imported.

Behaviours covered: command names; services, clusters, instances (one cluster's file, or every
cluster's), comma-separated lists, deploy groups and choices complete; the soa dir is `-d`, else
`PAASTA_SOA_DIR`; the stand-in commands parse like the real ones (`OPTIONS` == the real options);
the cheap names agree with the loader's on a well-formed tree; a TAB imports no command module,
no YAML parser, no jsonschema, no Kubernetes client; `bash_source`/`zsh_source`/`fish_source`
print the shell's script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.shell_completion import ShellComplete
from soa_builders import write_tree

from paasta_lite.cli.completion import OPTIONS, spec_of
from paasta_lite.cli.main import COMMANDS, cli
from paasta_lite.config import soa_names
from paasta_lite.config.soa_config import SoaDir

TREE = {
    "web/service.yaml": "git_url: git@example.invalid:web\n",
    "web/deploy.yaml": "pipeline:\n  - step: itest\n  - step: canary\n  - parallel:\n"
                       "      - step: prod.east\n      - step: prod.west\n",
    "web/kubernetes-east.yaml": "_tmpl: &t\n  deploy_group: prod.east\n\nmain:\n  <<: *t\n  instances: 2\n"
                                "canary: {deploy_group: canary}\n\"quoted\":\n  deploy_group: prod.east\n",
    "web/kubernetes-west.yaml": "# west\nmain:\n  deploy_group: prod.west\n"
                                "batch:\n  deploy_group: prod.west\n",
    "worker/kubernetes-east.yaml": "jobs:\n  deploy_group: 'adhoc'  # not in a pipeline\n",
    "_shared/kubernetes-nope.yaml": "x: {}\n",
    ".hidden/kubernetes-nope.yaml": "x: {}\n",
}


@pytest.fixture
def soa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_tree(tmp_path / "soa", TREE)
    monkeypatch.setenv("PAASTA_SOA_DIR", str(root))
    return root


def complete(line: str) -> list[str]:
    """What `paasta` offers for `line` + TAB (the words before the last are complete)."""
    *args, incomplete = line.split(" ")
    completer = ShellComplete(cli, {}, "paasta", "_PAASTA_COMPLETE")
    return [item.value for item in completer.get_completions(args[1:], incomplete)]


def test_command_names_complete_without_importing_them(soa: Path) -> None:
    assert complete("paasta st") == ["start", "status", "stop"]


@pytest.mark.parametrize(("line", "expected"), [
    ("paasta status -s ", ["web", "worker"]),
    ("paasta status -s w", ["web", "worker"]),
    ("paasta status --service we", ["web"]),
    ("paasta stop -s web -c ", ["east", "west"]),
    ("paasta list -c ", ["east", "west"]),
    ("paasta stop -s web -c west -i ", ["batch", "main"]),
    ("paasta stop -s web -c east -i ", ["canary", "main", "quoted"]),
    ("paasta status -s web -i ", ["batch", "canary", "main", "quoted"]),
    ("paasta status -s web -c east,west -i ma", ["main"]),
    ("paasta status -s web -i main,", ["main,batch", "main,canary", "main,quoted"]),
    ("paasta status -s web -c east,", ["east,west"]),
    ("paasta render -s web -c east -i main -i c", ["canary"]),
    ("paasta mark-for-deployment -s web -l ", ["canary", "prod.east", "prod.west"]),
    ("paasta wait-for-deployment -s worker -l ", ["adhoc"]),
    ("paasta get-latest-deployment -s web -i prod", ["prod.east", "prod.west"]),
    ("paasta render -o ", ["yaml", "json"]),
    ("paasta status -i ", []),  # no service yet: nothing to offer
    ("paasta status -s nope -i ", []),
])
def test_names_from_soa_configs(soa: Path, line: str, expected: list[str]) -> None:
    assert complete(line) == expected


def test_soa_dir_flag_beats_the_environment(soa: Path, tmp_path: Path) -> None:
    other = write_tree(tmp_path / "other", {"api/kubernetes-c1.yaml": "main: {}\n"})
    assert complete(f"paasta status -d {other} -s ") == ["api"]
    assert complete(f"paasta status --soa-dir={other} -s ") == ["api"]
    assert complete("paasta status -s ") == ["web", "worker"]


def test_soa_dir_itself_completes_as_a_directory(soa: Path) -> None:
    completer = ShellComplete(cli, {}, "paasta", "_PAASTA_COMPLETE")
    [item] = completer.get_completions(["status", "-d"], "/tm")
    assert (item.type, item.value) == ("dir", "/tm")


def test_stand_ins_parse_like_the_real_commands() -> None:
    """When a command's options change, paste the printed line into cli/completion.py's OPTIONS."""
    assert set(OPTIONS) == set(COMMANDS)
    for name in sorted(COMMANDS):
        real = cli.get_command(click.Context(cli), name)
        assert real is not None
        assert OPTIONS[name] == spec_of(real), f'OPTIONS["{name}"] must be: "{spec_of(real)}"'


def test_cheap_names_agree_with_the_loader(soa: Path) -> None:
    loader = SoaDir(soa)
    assert soa_names.service_names(str(soa)) == loader.list_services()
    for service in loader.list_services():
        config = loader.load_service(service)
        assert soa_names.cluster_names(str(soa), service) == loader.clusters_of(service)
        for cluster in config.clusters:
            names = soa_names.instance_names(str(soa), service, [cluster])
            assert names == sorted(config.instance_names(cluster)), (service, cluster)
        groups = {instance.deploy_group for instance in config.all_instances()} | set(config.deploy_groups)
        assert set(soa_names.deploy_group_names(str(soa), service)) == groups, service


def test_unreadable_places_have_no_names(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    assert soa_names.service_names(missing) == []
    assert soa_names.cluster_names(missing) == []
    assert soa_names.instance_names(missing, "web", ["east"]) == []
    assert soa_names.instance_names(missing, "web", ["../../etc"]) == []
    assert soa_names.deploy_group_names(missing, "web") == []


def run_paasta(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paasta_lite"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_a_tab_imports_nothing_heavy(soa: Path) -> None:
    code = (
        "import os, sys\n"
        "from paasta_lite.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('yaml', 'jsonschema', 'kubernetes', 'paasta_lite.config.soa_config')\n"
        "found = sorted(m for m in sys.modules if m.endswith('_cmd') or m.startswith(heavy))\n"
        "print(found, file=sys.stderr)\n"
    )
    env = {"_PAASTA_COMPLETE": "bash_complete", "COMP_WORDS": "paasta status -s web -i ", "COMP_CWORD": "5"}
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["plain,batch", "plain,canary", "plain,main", "plain,quoted"]
    assert done.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o nosort -F _paasta_completion paasta"),
    ("zsh", "compdef _paasta_completion paasta"),
    ("fish", "complete --no-files --command paasta"),
])
def test_the_shell_scripts(shell: str, marker: str) -> None:
    done = run_paasta({"_PAASTA_COMPLETE": f"{shell}_source"})
    assert done.returncode == 0 and marker in done.stdout, done.stdout + done.stderr
