"""Runs that share one measurement cache (parallel CI jobs, pytest workers) measure each key once: a run that finds
a key claimed by another measures the rest first, then waits for the other's value. On the tiny model."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.config import load_config
from harness.core.cache import MeasurementCache
from harness.pipeline import Measurer, make_plan, run
from tests.helpers import write_config

HOLD = """
import sys, time
from pathlib import Path
from harness.core.cache import MeasurementCache
with MeasurementCache(Path(sys.argv[1])).claim(sys.argv[2], wait=True) as mine:
    print("held" if mine else "not held", flush=True)
    time.sleep(600)
"""


def test_a_claim_excludes_other_processes_and_dies_with_its_holder(tmp_path):
    cache = MeasurementCache(tmp_path / "cache")
    key = "ab" + "0" * 62
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(cache.root), key], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with cache.claim(key, wait=False) as mine:
            assert mine is False  # another process measures this key now
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # killed mid-measurement: the kernel drops its lock, nothing goes stale
        holder.wait()
    with cache.claim(key, wait=False) as mine:
        assert mine is True
    assert not list(cache.root.rglob("*.lock"))  # no lock file is left behind once the claim ends


def _cfg(tmp_path: Path, base, adapter, data, cache: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return write_config(tmp_path / "release.toml", base=str(base.dir), adapter=adapter, data=data, cache_dir=cache)


def test_a_run_measures_the_candidate_while_another_run_measures_the_base_then_takes_its_value(
    tmp_path, tiny_base, tiny_damage_adapter, text_data
):
    # the other run's base value, as it will put it (keys are content hashes: the same in any cache folder)
    alone = run(_cfg(tmp_path / "alone", tiny_base, tiny_damage_adapter, text_data, tmp_path / "alone-cache"))
    shared = tmp_path / "shared"
    cfg = _cfg(tmp_path / "b", tiny_base, tiny_damage_adapter, text_data, shared)
    pl = make_plan(load_config(cfg))
    (req,) = pl.all_requests()
    measurer = Measurer(pl, MeasurementCache(shared))
    base_key, cand_key = measurer._key(req, "base"), measurer._key(req, "candidate")
    measurer.close()
    cache = MeasurementCache(shared)
    out: dict = {}
    with cache.claim(base_key, wait=True) as mine:  # the other run is measuring the base
        assert mine
        t = threading.Thread(target=lambda: out.setdefault("run", run(cfg)))
        t.start()
        deadline = time.monotonic() + 120
        while cache.peek(cand_key) is None:  # this run measures the candidate meanwhile
            assert t.is_alive() and time.monotonic() < deadline, "the run did not measure the candidate first"
            time.sleep(0.05)
        assert cache.peek(base_key) is None and t.is_alive()  # ... and waits for the base
        cache.put(base_key, MeasurementCache(tmp_path / "alone-cache").peek(base_key))  # the other run's value
    t.join(120)
    res = out["run"]
    assert (res.cache_hits, res.cache_misses) == (1, 1)  # the base was not measured twice
    assert res.report.gates == alone.report.gates


def test_the_same_adapter_saved_by_another_process_is_measured_once(tmp_path, tiny_base, tiny_damage_adapter):
    """peft saves `target_modules` from a set, in the order of the saving process's string hashing: the same
    adapter made in two processes (two pytest workers, two CI jobs) differs in adapter_config.json's bytes only."""
    import json
    import shutil

    from harness.core.models import check_adapter, fingerprint

    again = tmp_path / "again"
    shutil.copytree(tiny_damage_adapter, again)
    cfg = json.loads((again / "adapter_config.json").read_text())
    cfg["target_modules"] = list(reversed(cfg["target_modules"]))
    (again / "adapter_config.json").write_text(json.dumps(cfg, indent=3))
    (again / "README.md").write_text("our model card\n")
    a, b = check_adapter(tiny_damage_adapter, tiny_base), check_adapter(again, tiny_base)
    assert a.sha256 != b.sha256  # promotion still sees every byte
    assert fingerprint(tiny_base, a).key == fingerprint(tiny_base, b).key  # measurements are shared
    cfg["lora_alpha"] = cfg["lora_alpha"] * 2  # a change that does change the model
    (again / "adapter_config.json").write_text(json.dumps(cfg))
    assert fingerprint(tiny_base, check_adapter(again, tiny_base)).key != fingerprint(tiny_base, a).key
