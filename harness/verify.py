"""What `harness promote` trusts instead of report.json: the file's own content hash, and every verdict decided
again from the run's measurements in the cache, through the pipeline's own decision code, loading no model.

A report is a file anyone can edit. Its `content_sha256` shows a careless edit; replaying the run shows any edit
of what decides a release (a verdict, a number, the candidate's hash), since the replayed decisions come from
the measurements the run recorded, keyed by the content of the models and data they were made on.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates import release_verdict
from harness.config import parse_config
from harness.core.cache import MeasurementCache
from harness.core.errors import HarnessError
from harness.measure import KINDS
from harness.pipeline import FAILED, Measurer, RecordedFailure, make_plan, measure_and_decide
from reports.types import CONTENT_HASH, content_sha256

_MISSING = object()


class NotRecorded(HarnessError):
    """A measurement the replayed run needs is not in the cache (another machine, a pruned cache, changed data)."""


class Replay(Measurer):
    """A Measurer that measures nothing: each measurement is read back from the cache, under its content key or
    the run's own record (`Measurer.run_id`); a failure the run recorded fails again with the same words."""

    def _one(self, req: Any, variant: str, results: dict, *, wait: bool = True) -> Any:
        kind = KINDS[req.kind]
        keys = ([self._key(req, variant)] if kind.cached else []) + [self._key(req, variant, run=self.run_id)]
        hit = next((v for v in map(self.cache.peek, keys) if v is not None), None)
        if hit is None:
            where = f" on {req.data}" if req.data else ""
            raise NotRecorded(
                f"the run's {req.kind} measurement of the {variant}{where} is not in the cache {self.cache.root}, "
                "so its verdicts cannot be re-derived",
                fix="promote on the machine and with the cache the gate ran with (the same [run] cache_dir), with "
                "the same data files; or gate the candidate again",
            )
        if isinstance(hit, dict) and set(hit) == {FAILED}:
            raise RecordedFailure(hit[FAILED])
        return kind.load(hit)


@dataclass(frozen=True)
class Rederived:
    """The report's decisions as the replayed run makes them, in report.json's JSON shape."""

    verdict: str
    gates: dict[str, dict[str, Any]]
    candidate: dict[str, Any]
    reference: dict[str, Any]
    blocking: list[str]


def check_content_hash(raw: dict[str, Any]) -> str | None:
    """Why the report's content does not match the hash it was written with, or None when it does."""
    said = raw.get(CONTENT_HASH)
    if not said:
        return f"it has no {CONTENT_HASH} (written by an older harness, or the field was removed)"
    if said != content_sha256(raw):
        return f"its content no longer matches its {CONTENT_HASH}: it was edited after `harness gate` wrote it"
    return None


def _pinned(config: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, Any]:
    """The config with `reference = "registry:DIR"` pinned to the version the run was gated against (the registry
    may have moved on since; promotion says so itself)."""
    config = copy.deepcopy(config)
    spec = (config.get("model") or {}).get("reference")
    version = ((reference or {}).get("registry") or {}).get("version")
    if isinstance(spec, str) and spec.startswith("registry:") and "@" not in spec and version is not None:
        config["model"]["reference"] = f"{spec}@{version}"
    return config


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def rederive(raw: dict[str, Any], where: str) -> Rederived:
    """Replay the run that wrote the report `raw` (its config, data and models as they are now; its measurements
    from the cache) and decide every gate again. HarnessError when it cannot be replayed."""
    manifest = raw.get("manifest") if isinstance(raw.get("manifest"), dict) else {}
    run_id, config = manifest.get("run_id"), manifest.get("config")
    cache_dir = (manifest.get("cache") or {}).get("dir") if isinstance(manifest.get("cache"), dict) else None
    if not run_id or not isinstance(config, dict) or not cache_dir:
        raise HarnessError(
            "the report records no run to replay (manifest run_id, config and cache dir): it was written by an "
            "older harness, or edited",
            where=f"{where} manifest",
            fix="gate the candidate again with this harness (the cache makes it quick), then promote that report",
        )
    path = manifest.get("config_path")
    cfg = parse_config(_pinned(config, raw.get("reference")), path=Path(path) if path else None)
    pl = make_plan(cfg, preflight=False)
    replay = Replay(pl, MeasurementCache(Path(cache_dir)), str(run_id))
    _, gates = measure_and_decide(cfg, pl, replay)
    return Rederived(
        verdict=release_verdict(gates),
        gates={g.name: _plain(g.to_dict()) for g in gates},
        candidate=_plain(pl.candidate.to_dict()),
        reference=_plain(pl.reference.to_dict()),
        blocking=[g.name for g in gates if g.blocks],
    )


def first_difference(said: Any, derived: Any, path: str) -> str | None:
    """The first place (a dotted path) where what the file says differs from what was re-derived, with both
    values; None when they agree (floats to 1e-9, NaN equal to NaN)."""
    if isinstance(said, dict) and isinstance(derived, dict):
        for k in sorted(set(said) | set(derived), key=str):
            d = first_difference(said.get(k, _MISSING), derived.get(k, _MISSING), f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(said, list) and isinstance(derived, list) and len(said) == len(derived):
        pairs = enumerate(zip(said, derived, strict=True))
        return next((d for i, (a, b) in pairs if (d := first_difference(a, b, f"{path}[{i}]"))), None)
    if _same(said, derived):
        return None
    return f"{path}: the report says {_show(said)}, re-derived {_show(derived)}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _show(v: Any) -> str:
    if v is _MISSING:
        return "nothing"
    text = json.dumps(v, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def disagreement(raw: dict[str, Any], again: Rederived) -> str | None:
    """The first field of report.json that the replayed run does not reproduce, or None."""
    said_gates = raw.get("gates") if isinstance(raw.get("gates"), list) else []
    by_name = {g.get("name"): g for g in said_gates if isinstance(g, dict)}
    checks = [
        ("candidate", raw.get("candidate", _MISSING), again.candidate),
        ("reference", raw.get("reference", _MISSING), again.reference),
        ("gates (names)", sorted(map(str, by_name)), sorted(again.gates)),
        *((f"gates[{name}]", by_name.get(name, _MISSING), g) for name, g in again.gates.items()),
        ("verdict", raw.get("verdict", _MISSING), again.verdict),
        ("blocking", raw.get("blocking", _MISSING), again.blocking),
    ]
    return next((d for path, said, derived in checks if (d := first_difference(said, derived, path))), None)
