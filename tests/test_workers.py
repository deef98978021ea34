"""`[run] workers`: helper processes measure beside the run into its cache, and change no number (tiny model)."""

import subprocess
import sys

from harness.pipeline import run
from tests.helpers import write_config


def _cfg(path, base, adapter, data, cache, workers=1):
    return write_config(
        path, base=str(base.dir), adapter=adapter, data=data, cache_dir=cache,
        extra="\n[gates.length_drift]\nitems = 8\nmax_new_tokens = 8\n", min_relative_improvement=0.0,
    )  # fmt: skip


def _with_workers(cfg, n):
    text = cfg.read_text().replace("[run]\n", f"[run]\nworkers = {n}\n")
    cfg.write_text(text)
    return cfg


def test_a_helper_measures_what_the_run_would_under_the_same_keys(tmp_path, tiny_base, tiny_damage_adapter, text_data):
    cfg = _cfg(tmp_path / "release.toml", tiny_base, tiny_damage_adapter, text_data, tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "harness.helper", str(cfg), "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    res = run(cfg)  # every answer and log-likelihood is the helper's: the run loads no model to measure
    assert res.cache_misses == 0 and res.cache_hits == 4  # nll and probes, base and candidate
    alone = run(_cfg(tmp_path / "alone.toml", tiny_base, tiny_damage_adapter, text_data, tmp_path / "cache2"))
    assert alone.cache_misses == 4
    assert [g.to_dict() for g in res.report.gates] == [g.to_dict() for g in alone.report.gates]


def test_a_reference_only_helper_measures_the_base_before_the_candidate_exists(
    tmp_path, tiny_base, tiny_damage_adapter, text_data
):
    """What `harness demo` runs beside the training: the config names an adapter not written yet; the helper measures
    the base's side of the plan, and the run that follows (the adapter in place) measures only the candidate's. Each
    measurement the helper makes is logged on its stderr (where its time went)."""
    import shutil

    adapter = tmp_path / "adapter"  # not there yet
    cfg = _cfg(tmp_path / "release.toml", tiny_base, adapter, text_data, tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "harness.helper", str(cfg), "--cache", str(tmp_path / "cache"), "--reference-only"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"variant": "base"' in done.stderr and '"kind": "nll"' in done.stderr
    shutil.copytree(tiny_damage_adapter, adapter)
    res = run(cfg)
    assert res.cache_hits == 2 and res.cache_misses == 2  # the base's nll and probes were there; the candidate's not


def test_two_workers_give_the_numbers_one_gives(tmp_path, tiny_base, tiny_damage_adapter, text_data):
    two = run(_with_workers(_cfg(tmp_path / "two.toml", tiny_base, tiny_damage_adapter, text_data, tmp_path / "c2"), 2))
    one = run(_cfg(tmp_path / "one.toml", tiny_base, tiny_damage_adapter, text_data, tmp_path / "c1"))
    assert two.report.manifest["workers"] == 2 and one.report.manifest["workers"] == 1
    assert two.cache_hits + two.cache_misses == 4
    assert [g.to_dict() for g in two.report.gates] == [g.to_dict() for g in one.report.gates]


def test_workers_on_a_served_backend_are_ignored_with_a_note(tmp_path, tiny_base, tiny_damage_adapter, text_data):
    from harness.config import load_config
    from harness.workers import why_not

    cfg = _with_workers(_cfg(tmp_path / "r.toml", tiny_base, tiny_damage_adapter, text_data, tmp_path / "c"), 2)
    assert load_config(cfg).run.workers == 2 and why_not(load_config(cfg)) is None
    text = cfg.read_text().replace("[model]\n", '[model]\nbackend = "vllm"\n')
    cfg.write_text(text)
    assert "batches on its own" in why_not(load_config(cfg))


def test_helpers_are_stopped_before_anything_is_timed(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    """A timed kind (the serving gate's latency) is measured last, after `quiet()` stopped the helpers; the other
    measurements ran while they were alive. A process standing in for a helper shows which."""
    from dataclasses import dataclass

    from gates import registry
    from gates.types import GateResult
    from harness.config import load_config
    from harness.core.cache import MeasurementCache
    from harness.measure import KINDS, MeasureKind
    from harness.pipeline import Measurer, make_plan, measure_and_decide
    from harness.workers import Helpers

    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    seen: list[tuple[str, bool]] = []

    def probe(name):
        def run_(call):
            seen.append((name, helper.poll() is None))
            return 1

        return MeasureKind(
            run=run_, load=lambda d: d, dump=lambda v: v, load_data=None, cached=False, timed=name == "t"
        )

    @dataclass(frozen=True)
    class _P:
        data: str = ""

    KINDS["_t_timed"], KINDS["_t_plain"] = probe("t"), probe("p")
    reqs = [registry.MeasureRequest(k, "", variants=("data",)) for k in ("_t_timed", "_t_plain")]
    registry.gate("_t_order", params=_P, requests=lambda p: reqs)(
        lambda p, ctx: GateResult.not_applicable("_t_order", "-")
    )
    try:
        cfg = _cfg(tmp_path / "r.toml", tiny_base, tiny_zero_adapter, text_data, tmp_path / "c")
        cfg.write_text(cfg.read_text() + "\n[gates._t_order]\n")
        conf = load_config(cfg)
        pl = make_plan(conf)
        m = Measurer(pl, MeasurementCache(tmp_path / "c"))
        m.quiet = Helpers([helper]).stop
        measure_and_decide(conf, pl, m)
        m.close()
    finally:
        registry._REGISTRY.pop("_t_order")
        KINDS.pop("_t_timed"), KINDS.pop("_t_plain")
        helper.kill()
    assert seen == [("p", True), ("t", False)]
