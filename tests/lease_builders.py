"""The run lock's Lease as another holder would leave it (for tests of setup, cleanup and deployd)."""

from __future__ import annotations

import time

from fake_apiserver import FakeApiServer

from paasta_lite.kube.run_lock import LEASE_NAME, LEASE_NAMESPACE, micro_time


def hold_lease(server: FakeApiServer, holder: str, *, renewed: float | None = None,
               seconds: int = 30) -> None:
    """Store the cluster's run-lock Lease as held by ``holder`` (``""``: released), renewed at
    ``renewed`` (default: now)."""
    stamp = micro_time(time.time() if renewed is None else renewed)
    server.put_object("leases", {"metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE},
                                 "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds,
                                          "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 3}})
