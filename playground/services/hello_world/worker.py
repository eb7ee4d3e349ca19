"""hello_world's worker instance: no port, prints a heartbeat and touches a file.

The instance's `healthcheck_cmd` tests that the file is fresh, so a wedged worker goes unready.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

HEARTBEAT = Path(os.environ.get("HEARTBEAT_FILE", "/tmp/worker-heartbeat"))
INTERVAL_S = float(os.environ.get("HEARTBEAT_INTERVAL_S", "5"))


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    beat = 0
    while True:
        beat += 1
        HEARTBEAT.touch()
        print(f"hello_world worker beat={beat} version={os.environ.get('PAASTA_GIT_SHA', '?')}", flush=True)
        time.sleep(INTERVAL_S)


if __name__ == "__main__":
    main()
