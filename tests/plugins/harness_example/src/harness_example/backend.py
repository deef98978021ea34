"""`hf_logged`: the in-process transformers backend, appending each variant it opens to `open_log`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.core.runtime.hf import HFBackend
from harness.core.runtime.registry import backend


@dataclass(frozen=True)
class LoggedOptions:
    open_log: str = field(metadata={"path": True, "help": "file each opened variant is appended to"})


@backend("hf_logged")
class LoggedHF(HFBackend):
    help = "In-process transformers that logs every variant it opens"
    Options = LoggedOptions

    @classmethod
    def validate(cls, options, *, reference):
        return [] if Path(options.open_log).parent.is_dir() else [("open_log", "its folder must exist")]

    def open(self, variant, dtype=None):
        with open(self.state.open_log, "a", encoding="utf-8") as f:
            f.write(variant + "\n")
        return super().open(variant, dtype)

    def engine_key(self, variant):
        return {"engine": "hf_logged"}
