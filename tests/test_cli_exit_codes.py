"""The README's commands table tells the truth about exit codes.

Each case runs a real command (no cluster: a kubeconfig that does not exist stands for "no
kubeconfig") and checks the code it returns, then that the README row of that command lists
that code. A command whose behaviour changes must change its row too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from soa_builders import GOOD_SHA, deployments_doc, write_tree

from paasta_lite.cleanup_kubernetes_jobs import cleanup_kubernetes_jobs
from paasta_lite.cli.main import cli
from paasta_lite.generate_deployments_for_service import main as generate_deployments_for_service
from paasta_lite.paasta_deployd import paasta_deployd
from paasta_lite.setup_kubernetes_job import setup_kubernetes_job

README = Path(__file__).resolve().parent.parent / "README.md"

ENTRY_POINTS: dict[str, click.Command] = {
    "setup_kubernetes_job": setup_kubernetes_job,
    "cleanup_kubernetes_jobs": cleanup_kubernetes_jobs,
    "generate_deployments_for_service": generate_deployments_for_service,
    "paasta_deployd": paasta_deployd,
}


def readme_codes(row_start: str) -> set[int]:
    """The exit codes in the last cell of the commands-table row whose first cell starts so."""
    rows = [line for line in README.read_text().splitlines() if line.startswith(f"| `{row_start}")]
    assert len(rows) == 1, f"README has {len(rows)} rows for {row_start}"
    last_cell = rows[0].rstrip(" |").rsplit(" | ", 1)[1]
    return {int(code) for code in re.findall(r"\b(\d+)\b", last_cell)}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    soa = write_tree(tmp_path / "soa", {
        "good/service.yaml": {"git_url": "git@example.invalid:good"},
        "good/kubernetes-c1.yaml": {"main": {}},
        "good/deployments.json": deployments_doc({"c1.main": GOOD_SHA}, service="good"),
        "broken/kubernetes-c1.yaml": "main: [unclosed\n",
        "nogit/kubernetes-c1.yaml": {"main": {}},
    })
    etc = write_tree(tmp_path / "etc", {"cluster.json": {"cluster": "c1"}})
    return {"PAASTA_SOA_DIR": str(soa), "PAASTA_SYSTEM_CONFIG_DIR": str(etc),
            "KUBECONFIG": str(tmp_path / "no-kubeconfig"), "KUBECONTEXT": ""}


CASES = [
    ("paasta validate", ["validate", "-s", "good"], 0),
    ("paasta validate", ["validate", "--all"], 1),
    ("paasta validate", ["validate", "-s", "nope"], 2),
    ("paasta list", ["list", "-i"], 1),
    ("paasta list", ["info", "-s", "good"], 0),
    ("paasta list", ["info", "-s", "nope"], 2),
    ("paasta render", ["render", "-s", "nogit"], 0),
    ("paasta render", ["render", "-s", "nogit", "-i", "main"], 1),
    ("paasta render", ["render", "-s", "broken"], 2),
    ("paasta start", ["stop", "-s", "good", "-c", "WRONG", "-i", "main"], 2),
    ("paasta start", ["stop", "-s", "nogit", "-c", "c1", "-i", "main"], 2),
    ("paasta get-latest-deployment", ["get-latest-deployment", "-s", "good", "-l", "c1.main"], 0),
    ("paasta get-latest-deployment", ["get-latest-deployment", "-s", "good", "-l", "nope"], 1),
    ("paasta get-latest-deployment", ["get-latest-deployment", "-s", "nope", "-l", "c1.main"], 2),
    ("paasta mark-for-deployment", ["mark-for-deployment", "-s", "nope", "-l", "x", "-c", "abc"], 2),
    ("paasta status", ["status", "-s", "good"], 2),
    ("paasta logs", ["logs", "-s", "good"], 2),
    ("paasta logs", ["logs", "-s", "good", "-C", "build"], 2),
    ("setup_kubernetes_job", ["setup_kubernetes_job"], 2),
    ("cleanup_kubernetes_jobs", ["cleanup_kubernetes_jobs"], 2),
    ("generate_deployments_for_service", ["generate_deployments_for_service", "-s", "nogit"], 2),
    ("generate_deployments_for_service", ["generate_deployments_for_service", "-s", "nope"], 2),
    ("paasta_deployd", ["paasta_deployd"], 2),
    ("paasta_deployd", ["paasta_deployd", "--print-manifests"], 0),
]


@pytest.mark.parametrize(("row", "argv", "code"), CASES, ids=[" ".join(c[1]) for c in CASES])
def test_exit_code_is_the_documented_one(env: dict[str, str], row: str, argv: Sequence[str],
                                         code: int) -> None:
    command = ENTRY_POINTS.get(argv[0])
    if command is None:
        result = CliRunner().invoke(cli, list(argv), env=env)
    else:
        result = CliRunner().invoke(command, ["-d", env["PAASTA_SOA_DIR"], *argv[1:]], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    assert code in readme_codes(row), f"README row `{row}` does not list exit {code}: {result.output}"
