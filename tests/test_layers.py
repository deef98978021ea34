"""The package's shape: no import circle between any two of its modules (lint-imports checks the layers and the
circles inside each package; this checks across packages too), and one place that calls `model.generate`."""

import re
from pathlib import Path

import grimp

PACKAGES = ("harness", "gates", "probes", "judges", "fine_tune", "reports")
ROOT = Path(__file__).resolve().parents[1]


def _cycles(adj: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in adj:
        if root in index:
            continue
        work = [(root, iter(adj[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(adj[w])))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": []}) == []


def test_no_import_circle_between_any_two_modules():
    g = grimp.build_graph(*PACKAGES)
    mods = [m for m in g.modules if m.split(".")[0] in PACKAGES]
    adj = {m: sorted(x for x in g.find_modules_directly_imported_by(m) if x.split(".")[0] in PACKAGES) for m in mods}
    assert _cycles(adj) == []


def test_one_generate_call_on_a_model():
    calls = [
        f"{p.relative_to(ROOT)}:{n}"
        for pkg in PACKAGES
        for p in sorted((ROOT / pkg).rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\bmodel\.generate\(", line)
    ]
    assert len(calls) == 1 and calls[0].startswith("harness/core/runtime/hf.py:"), calls


def test_one_cache_key_function():
    """Every cached measurement (pipeline kinds, release artifacts, judgements) is keyed by harness.core.cache's
    `measurement_key`; nothing else builds a key."""
    users = {
        str(p.relative_to(ROOT))
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        if "measurement_key(" in p.read_text()
    }
    assert users == {"harness/core/cache.py", "harness/pipeline.py", "judges/protocol.py"}
    builders = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "measure_version" in p.read_text()]
    assert [str(p.relative_to(ROOT)) for p in builders] == ["harness/core/cache.py"]


def test_measured_models_are_opened_by_the_runtime_loader_only():
    """Every variant a measurement reads (base, candidate, merged, GGUF, a local judge, a bundle's merge) is a
    runtime opened by harness/core/runtime/load.py; loading weights elsewhere is training (fine_tune/runner.py) and
    merging (harness/release/export.py), on top of the loaders themselves (harness/core/models.py)."""
    pattern = re.compile(r"\b(load_base_model|attach_adapter)\(|(AutoModelForCausalLM|PeftModel)\.from_pretrained\(")
    users = {
        str(p.relative_to(ROOT))
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        for line in p.read_text().splitlines()
        if pattern.search(line) and not line.lstrip().startswith(("def ", "#"))
    }
    allowed = {
        "harness/core/models.py",
        "harness/core/runtime/load.py",
        "fine_tune/runner.py",
        "harness/release/export.py",
    }
    assert users == allowed, users - allowed


def test_every_module_of_harness_sits_in_a_layer():
    """The layers contract names the top of `harness` module by module (import-linter has no "the rest of this
    package"): a new top module that is not listed would escape it, so it must be in the list or in harness.core."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    named = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    assert {"harness.core", "gates", "probes", "judges", "fine_tune", "reports"} <= named
    top = {
        ".".join(("harness", *p.relative_to(ROOT / "harness").with_suffix("").parts[:1]))
        for p in (ROOT / "harness").rglob("*.py")
        if p.name != "__init__.py" or p.parent != ROOT / "harness"
    }
    assert top - named == set(), f"add these to the top layer in pyproject.toml: {sorted(top - named)}"


BUILT_IN_KINDS = {
    "probes": "probes.sampling",
    "answers": "probes.sampling",
    "nll": "probes.perplexity",
    "choices": "probes.choices",
    "lmeval": "probes.lmeval",
    "training_log": "probes.training_log",
    "contamination": "probes.contamination",
    "judge": "judges.run",
    "audit": "fine_tune.audit",
    "merge_parity": "harness.release.shipping",
    "gguf_parity": "harness.release.shipping",
    "template_drift": "harness.release.shipping",
    "rollback": "harness.release.shipping",
    "serving": "harness.release.serving",
}


def test_every_built_in_measurement_kind_is_registered_beside_its_probe():
    """Importing harness.measure registers every built-in kind, each from the module that runs it; a cached kind
    names that module in its `code` (its source is part of the cache key)."""
    import harness.measure
    from harness.core import kinds

    assert harness.measure.KINDS is kinds.KINDS
    assert BUILT_IN_KINDS.keys() <= kinds.KINDS.keys(), sorted(BUILT_IN_KINDS.keys() - kinds.KINDS.keys())
    for name, module in BUILT_IN_KINDS.items():
        k = kinds.get_kind(name)
        assert k.run.__module__ == module, (name, k.run.__module__)
        assert not k.cached or module in k.code, (name, k.code)


def test_a_measurement_kind_registered_twice_is_refused():
    import pytest

    import harness.measure  # noqa: F401 (registers the built-in kinds)
    from harness.core import kinds

    before = dict(kinds.KINDS)

    def again(call):
        return None

    with pytest.raises(ValueError, match=r"'nll' is already registered by probes\.perplexity; tests\.test_layers"):
        kinds.kind("nll", load=kinds.as_is, dump=kinds.as_is)(again)
    assert kinds.KINDS == before  # the first registration stands

    name = "_test_layers_once"
    try:
        kinds.kind(name, load=kinds.as_is, dump=kinds.as_is)(again)
        with pytest.raises(ValueError, match=f"{name}.*tests\\.test_layers.*tests\\.test_layers"):
            kinds.kind(name, load=kinds.as_is, dump=kinds.as_is)(again)
    finally:
        kinds.KINDS.pop(name, None)
        kinds._REGISTERED_BY.pop(name, None)


def test_an_unknown_measurement_kind_names_the_known_ones():
    import pytest

    import harness.measure  # noqa: F401 (registers the built-in kinds)
    from harness.core.kinds import get_kind

    with pytest.raises(KeyError, match="unknown measurement kind 'nope'; known: answers, audit, "):
        get_kind("nope")
