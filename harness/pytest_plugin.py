"""pytest plugin: `pytest --harness-config release.toml` collects one test per gate (test id = gate name).

The pipeline runs once per session, on the first gate test; a gate that does not pass fails its test
with the gate's explanation and worst examples; a gate that does not apply to the candidate (n/a) is skipped with
the reason. Nothing heavy is imported until a gate test runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.config import load_config
from harness.core.errors import HarnessError
from harness.core.paths import new_run_dir
from harness.core.tracking import TRACKERS

_RESULT_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "release gates (harness)")
    group.addoption(
        "--harness-config",
        default=None,
        metavar="FILE",
        help="release config (TOML): collect one test per configured gate",
    )
    group.addoption(
        "--harness-out",
        default=None,
        metavar="DIR",
        help="where to write report.md/json and junit.xml (default: a new harness-runs/pytest-TIMESTAMP)",
    )
    group.addoption(
        "--harness-log-to",
        default="none",
        choices=TRACKERS,
        help="also write the verdict and gate metrics to this tracker (as `harness gate --log-to`)",
    )


def _config_path(config: pytest.Config) -> Path | None:
    value = config.getoption("--harness-config", default=None)
    return Path(value).expanduser().resolve() if value else None


def pytest_configure(config: pytest.Config) -> None:
    path = _config_path(config)
    if path is None:
        return
    if not path.is_file():
        raise pytest.UsageError(f"--harness-config {path}: file not found; pass a TOML release config")

    try:
        cfg = load_config(path)  # validated up front: a bad config is a usage error (exit 4), not a test failure
    except HarnessError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[_RESULT_KEY] = {"config": cfg}
    if str(path) not in config.args:
        config.args.append(str(path))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    path = _config_path(parent.config)
    if path is not None and Path(file_path).resolve() == path:
        return HarnessConfigFile.from_parent(parent, path=Path(file_path))
    return None


class HarnessConfigFile(pytest.File):
    def collect(self):
        for g in self.config.stash[_RESULT_KEY]["config"].gates:
            yield GateItem.from_parent(self, name=g.name)


class GateFailed(Exception):
    pass


def _run_once(config: pytest.Config) -> Any:
    state = config.stash[_RESULT_KEY]
    if "result" not in state and "error" not in state:
        from harness.pipeline import run

        out_opt = config.getoption("--harness-out")
        out = Path(out_opt) if out_opt else new_run_dir(Path(config.rootpath) / "harness-runs", prefix="pytest")
        try:
            state["result"] = run(state["config"], out, log_to=config.getoption("--harness-log-to"))
        except HarnessError as e:
            state["error"] = str(e)
    if "error" in state:
        raise GateFailed(f"the release could not be gated (bad input):\n{state['error']}")
    return state["result"]


def check_gate(g: Any, reference: str = "base") -> None:
    """A gate's test outcome: return (passed), `pytest.skip` (n/a: not applicable, with the reason; or an optional gate
    that did not pass) or raise GateFailed with the explanation and worst examples (`reference` names the compared
    model in them)."""
    if g.verdict == "pass":
        return
    if g.verdict == "n/a":  # the gate has no question for this candidate: neither passed nor failed
        pytest.skip(f"gate {g.name!r} not applicable: {g.reason_na}")
    if not g.required:
        pytest.skip(f"optional gate {g.verdict}: {g.explanation}")
    from reports.junit import _evidence_text

    raise GateFailed(f"gate {g.name!r} {g.verdict}: {_evidence_text(g, reference)}")


class GateItem(pytest.Item):
    def runtest(self) -> None:
        result = _run_once(self.config)
        g = next(r for r in result.report.gates if r.name == self.name)
        self.user_properties.append(("verdict", g.verdict))
        check_gate(g, result.report.reference_label)

    def repr_failure(self, excinfo, style=None):  # type: ignore[override]
        if isinstance(excinfo.value, GateFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"release gate: {self.name}"


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state = config.stash.get(_RESULT_KEY, None)
    if state and "result" in state:
        r = state["result"]
        terminalreporter.write_line(f"harness: release {r.report.verdict.upper()}; report at {r.files.get('markdown')}")
