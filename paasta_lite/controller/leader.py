"""Leader election: the seam between deployd's loop and whoever decides that this replica writes.

Several deployd replicas may run (the manifests ask for 2); exactly one may write. The loop only
asks `is_leader()` — before each batch and between writes, so losing the lease stops writing
at once — and runs a full resync when it becomes leader (what happened while it was a
follower was nobody's job). Everything else (watching, scanning, serving metrics) runs on every
replica, so a follower takes over with warm caches.

`AlwaysLeader` is for a single replica (``--leader-elect`` off). The Lease-based elector lives
with the run lock of the cron entry points (coordination.k8s.io Lease; one lock per cluster, so a
cron `setup_kubernetes_job` and deployd never write at the same time); `make_elector` is where it
is plugged in.
"""

from __future__ import annotations

from typing import Protocol

from paasta_lite.errors import UsageError


class LeaderElector(Protocol):
    """What the loop needs from leader election."""

    def start(self) -> None:
        """Begin campaigning (in the background); returns at once."""

    def is_leader(self) -> bool:
        """Whether this replica may write right now (cheap: called between writes)."""

    def stop(self) -> None:
        """Stop campaigning and release the lease if held (on shutdown, after in-flight writes)."""


class AlwaysLeader:
    """The only replica: always the leader."""

    def start(self) -> None:
        pass

    def is_leader(self) -> bool:
        return True

    def stop(self) -> None:
        pass


def make_elector(leader_elect: bool, *, identity: str, cluster: str) -> LeaderElector:
    """The elector for ``--leader-elect`` (a Lease named after ``cluster``) or `AlwaysLeader`."""
    if not leader_elect:
        return AlwaysLeader()
    raise UsageError(
        f"--leader-elect is not available yet (identity {identity}, cluster {cluster}): it uses the "
        "coordination.k8s.io Lease of the reconcilers' run lock. Run a single replica without it.")
