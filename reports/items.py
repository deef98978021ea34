"""`items.parquet` and `items.csv`: every item of every gate that measures items, one row per (gate, measurement,
item, variant), so that a blocked release can be investigated item by item. The schema is `COLUMNS` (versioned by
`SCHEMA_VERSION`, written down in docs/items.md); `harness.results.load(DIR)` is the documented way to read it.

This module holds the schema, the row type and the files; `reports.item_rows` builds the rows from a run's
measurements (one function per result type, told which gate asked and with what parameters).

pandas is imported where a table is made or read, not when this module is (it takes about a second to import).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gates.registry import MeasureRequest
from harness.core.errors import HarnessError

SCHEMA_VERSION = 1
PARQUET = "items.parquet"
CSV = "items.csv"
VARIANTS = ("base", "candidate")  # as report.json keys them: "base" is the reference, whichever model it is

# column -> pandas dtype, in file order (docs/items.md says what each holds)
COLUMNS: dict[str, str] = {
    "schema_version": "int64",
    "gate": "string",
    "measurement": "string",  # the request's kind and data: "probes builtin:general"
    "kind": "string",
    "data": "string",
    "item_id": "string",
    "variant": "string",  # "base" (the reference) | "candidate"
    "prompt": "string",
    "answer": "string",  # the first sample; "" for scoring-only kinds
    "n_samples": "int64",  # answers sampled (0: scoring-only kinds)
    "score": "Float64",  # the item's own number the gate averages (null where the kind scores nothing)
    "score_name": "string",
    "check": "string",
    "outcome": "string",
    "tokens": "Int64",  # answer tokens (mean over samples, rounded), or scored tokens for log-likelihood kinds
    "category": "string",
    "change": "Float64",  # candidate score - reference score of this item (paired items only)
    "status": "string",  # "lost" | "gained" | "same" from the candidate's point of view (items with an outcome level)
}
STATUSES = ("lost", "gained", "same")


@dataclass(frozen=True)
class ItemRow:
    """One row of the items table (`COLUMNS` without `schema_version`). `level` is not a column: how well the item
    went on an ordered scale where higher is better for the candidate (1 pass, 0 fail; a pass rate; 1 refused on a
    harmful request); paired rows get their `status` from it. None: the score has no better side to compare."""

    gate: str
    measurement: str
    kind: str
    data: str
    item_id: str
    variant: str
    prompt: str
    answer: str = ""
    n_samples: int = 0
    score: float | None = None
    score_name: str = ""
    check: str = ""
    outcome: str = ""
    tokens: int | None = None
    category: str | None = None
    change: float | None = None
    status: str | None = None
    level: float | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        del d["level"]
        return {"schema_version": SCHEMA_VERSION, **d}


@dataclass(frozen=True)
class Info:
    """What the data set says about an item: its whole prompt, its check spec and its category."""

    prompt: str
    check: Mapping[str, Any] = field(default_factory=dict)
    category: str | None = None


@dataclass(frozen=True)
class Source:
    """Where a measurement's rows come from: the gate that asked, its parameters, the request, the variant measured
    ("base" | "candidate", or "pair" for a comparison of both) and what the data set says of each item. `inputs`:
    for a pair, the source measurement of each variant."""

    gate: str
    params: Any
    request: MeasureRequest
    variant: str
    info: Mapping[str, Info] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def measurement(self) -> str:
        return f"{self.request.kind} {self.request.data}".strip()

    def row(self, item_id: str, prompt: str, *, variant: str | None = None, **fields: Any) -> ItemRow:
        info = self.info.get(item_id)
        return ItemRow(
            gate=self.gate,
            measurement=fields.pop("measurement", self.measurement),
            kind=self.request.kind,
            data=self.request.data,
            item_id=item_id,
            variant=variant or self.variant,
            prompt=info.prompt if info is not None and info.prompt else prompt,
            category=fields.pop("category", None) or (info.category if info is not None else None),
            **fields,
        )


def frame(rows: Sequence[ItemRow]) -> Any:
    """The rows as a pandas DataFrame with the schema's columns and dtypes (an empty table keeps them too)."""
    import pandas as pd  # here, not at import: see the module's docstring

    df = pd.DataFrame([r.record() for r in rows], columns=list(COLUMNS))
    return df.astype(COLUMNS)


def write_items(rows: Sequence[ItemRow], out_dir: Path) -> dict[str, Path]:
    """Write `items.parquet` and `items.csv` into `out_dir`, each atomically (a temporary file renamed into place)."""
    df = frame(rows)
    files = {"items_parquet": Path(out_dir) / PARQUET, "items_csv": Path(out_dir) / CSV}
    for key, path in files.items():
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            if key == "items_parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_csv(tmp, index=False)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return files


LOAD_FIX = "re-run `harness gate` (it writes items.parquet beside report.json)"


def read_items(path: str | Path) -> Any:
    """The items table of a report directory (or an items.parquet file) as a DataFrame with the schema's dtypes. A
    missing file, an unreadable one and a newer schema than this harness reads are bad input naming the path."""
    import pandas as pd  # here, not at import: see the module's docstring

    path = Path(path)
    file = path / PARQUET if path.is_dir() or path.suffix != ".parquet" else path
    if not file.is_file():
        where = "report directory" if path.is_dir() else "path"
        raise HarnessError(
            f"no {PARQUET} here (reports written before items tables have none)",
            where=str(file if path.is_dir() else path),
            fix=f"pass a {where} written by `harness gate`, or {LOAD_FIX}",
        )
    try:
        df = pd.read_parquet(file)
    except Exception as e:  # pyarrow's errors have no common base
        raise HarnessError(
            f"cannot read the items table ({type(e).__name__}: {str(e)[:200]})", where=str(file), fix=LOAD_FIX
        ) from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise HarnessError(f"not an items table: no column {', '.join(missing[:5])}", where=str(file), fix=LOAD_FIX)
    versions = sorted({int(v) for v in df["schema_version"].dropna().unique()})
    if versions and max(versions) > SCHEMA_VERSION:
        raise HarnessError(
            f"items schema_version {max(versions)} is newer than this harness reads ({SCHEMA_VERSION})",
            where=str(file),
            fix="upgrade release-gate-harness (`pip install -U release-gate-harness`) to read it",
        )
    return df.astype(COLUMNS)


__all__ = [
    "COLUMNS",
    "CSV",
    "PARQUET",
    "SCHEMA_VERSION",
    "STATUSES",
    "VARIANTS",
    "Info",
    "ItemRow",
    "Source",
    "frame",
    "read_items",
    "write_items",
]
