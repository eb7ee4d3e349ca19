"""The one ISO-8601 / RFC 3339 reader (the API's timestamps, the event log's, `--since`).

`datetime.fromisoformat` only accepts a trailing `Z` from Python 3.11 on; we support 3.10.
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo


def parse_iso(text: str, *, naive_zone: tzinfo = timezone.utc) -> datetime:
    """An aware datetime; `Z`/`z` means UTC and a time without a zone is read in `naive_zone`.

    Raises ValueError for text that is not ISO-8601.
    """
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=naive_zone)
