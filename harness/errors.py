"""Error types and the CLI's exit codes.

A `HarnessError` is bad input from the user: it names the place (file, line, key) and the fix,
and the CLI exits 2. Anything else escaping the pipeline is an internal error (exit 3).
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_BLOCKED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


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
