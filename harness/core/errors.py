"""Error types and the CLI's exit codes.

A `HarnessError` is bad input from the user: it names the place (file, line, key) and the fix,
and the CLI exits 2. Anything else escaping the pipeline is an internal error (exit 3).
"""

from __future__ import annotations

import re

EXIT_PASS = 0
EXIT_BLOCKED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

NOT_AN_ENV_NAME = (
    "must be the NAME of an environment variable (letters, digits and _, e.g. OPENAI_API_KEY), not the key "
    "itself; the value is not shown. If it was a key, treat it as leaked: revoke it, `export NAME=<new key>` and "
    "set this to NAME"
)


def is_env_name(value: object) -> bool:
    """Whether `value` can be an environment variable's name and does not look like a secret (an API key in the
    place of its variable's name: long, lower-case letters and digits mixed, no underscore)."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", value):
        return False
    keyish = len(value) >= 24 and "_" not in value and any(c.islower() for c in value)
    return not (keyish and any(c.isdigit() for c in value))


class HarnessError(Exception):
    """Bad input: says where the problem is and what to do about it."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class ConfigError(HarnessError):
    """One or more problems in a release config, all reported together."""

    def __init__(self, problems: list[str], *, where: str):
        self.problems = problems
        body = "\n".join(f"  - {p}" for p in problems)
        n = len(problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the release config:\n{body}", where=where)
