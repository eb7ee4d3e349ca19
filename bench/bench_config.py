"""Benchmark: load and validate 2,000 instances (500 services x 4) in one process.

Run with `make bench` (or `.venv/bin/python bench/bench_config.py`). Prints wall times; the
target is under 1 second for the whole load + validation.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soa_tree import CLUSTER, write_tree
from paasta_lite.config.soa_config import SoaDir


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        soa = write_tree(Path(tmp))
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            cluster = SoaDir(soa).instances_for_cluster(CLUSTER)
            runs.append(time.perf_counter() - start)
        count = len(cluster.instances)
        valid = count == 2000 and not cluster.errors and not cluster.instance_errors
        assert valid, "the benchmark tree must be valid"
        print(f"load+validate {count} instances of {len(cluster.services)} services: "
              f"best {min(runs):.3f} s, first {runs[0]:.3f} s (3 runs)")


if __name__ == "__main__":
    main()
