"""Durations written the way operators write them: `90s`, `15m`, `12h`, `30d`, `2w`.

One parser for the CLI's options and the policy file's retention periods, so both accept the same
text.
"""

from __future__ import annotations

import re
from datetime import timedelta

from tether.core.validation import MAX_SECONDS

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """A whole number and one unit; ValueError naming the accepted forms otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 12h, 30d or 2w")
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds > MAX_SECONDS:  # past this, dates overflow (a cutoff before the year 1)
        raise ValueError(f"{text!r} is longer than 100 years")
    return timedelta(seconds=seconds)
