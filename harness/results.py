"""Reading a run's per-item results: `load(DIR)` is the documented way to read the `items.parquet` that
`harness gate` writes beside report.json (one row per gate, measurement, item and variant; schema in docs/items.md).

    from harness.results import load
    items = load("out")
    items[(items.gate == "regression") & (items.status == "lost")]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reports.items import COLUMNS, SCHEMA_VERSION, read_items

if TYPE_CHECKING:
    import pandas


def load(path: str | Path) -> pandas.DataFrame:
    """The items table of a report directory (or of an items.parquet file) as a DataFrame with the schema's columns
    and dtypes (`COLUMNS`).

    Raises:
        HarnessError: the directory has no items.parquet (a report from before items tables: re-run the gate), the
            file cannot be read, or it was written under a newer `schema_version` than this harness reads (upgrade);
            the message names the path and the fix.
    """
    return read_items(path)


__all__ = ["COLUMNS", "SCHEMA_VERSION", "load"]
