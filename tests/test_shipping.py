"""What ships: merge, GGUF export and the chat template, gated on the tiny model; each negative case fails
the right gate (a GGUF without the Q/K permutation, a chat template edited after training, a merge
re-quantised through 4-bit weights)."""

from __future__ import annotations

import json
import shutil

import pytest

from harness.cli import main
from harness.core.models import check_adapter
from harness.core.runtime.load import open_gguf
from harness.pipeline import run
from harness.release.artifacts import ensure_merged, export_dir
from harness.release.export import export_gguf


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "hc"))  # fresh export artifacts per test
    return tmp_path / "hc"


def _config(tmp_path, tiny_base, adapter, gates: str) -> str:
    path = tmp_path / "release.toml"
    path.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\nadapter = "{adapter}"\n[run]\ncache_dir = "{tmp_path / "mc"}"\n' + gates
    )
    return str(path)


GATES = """
[gates.merge_parity]
max_prompts = 3
[gates.gguf_parity]
types = ["F32", "F16", "Q8_0"]
max_prompts = 3
q8_0_min_top1 = 0.5   # a tiny random model has near-flat distributions
[gates.template_drift]
max_prompts = 3
max_new_tokens = 8
min_stop_rate = 0.0   # a random model never learned to stop
"""


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, tiny_base):
    from tests.helpers import make_adapter

    return make_adapter(
        tiny_base,
        tmp_path_factory.mktemp("ship") / "ad",
        "damage",
        scale=0.5,
        target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
    )


def test_merge_export_and_all_three_gates_pass(tmp_path, tiny_base, adapter, cache):
    report = run(_config(tmp_path, tiny_base, adapter, GATES), tmp_path / "out").report
    g = {x.name: x for x in report.gates}
    assert all(x.verdict == "pass" for x in report.gates), [x.explanation for x in report.gates]
    mp = g["merge_parity"].details
    assert mp["dtype"] == "float32" and mp["parity"]["greedy_equal"] == 1.0 and mp["parity"]["max_abs_logit"] < 1e-3
    types = g["gguf_parity"].details["types"]
    assert types["F32"]["parity"]["max_abs_logit"] < 1e-4  # F32 is exact up to float order
    assert types["F16"]["parity"]["mean_kl"] < types["Q8_0"]["parity"]["mean_kl"]
    assert types["F16"]["bytes"] > types["Q8_0"]["bytes"]
    td = g["template_drift"].details
    assert td["eot_token"] == "<|im_end|>" and td["gguf_eos"] == td["eot_id"] in td["generation_config_eos"]
    # a re-run reuses the merge, the GGUFs and the numbers
    again = run(_config(tmp_path, tiny_base, adapter, GATES)).report
    assert [x.candidate for x in again.gates] == [x.candidate for x in report.gates]


def test_a_gguf_without_the_qk_permutation_fails_gguf_parity(tmp_path, tiny_base, adapter, cache):
    info = check_adapter(adapter, tiny_base)
    merged = ensure_merged(tiny_base, info)
    export_gguf(merged, export_dir(tiny_base, info) / "model-F16.gguf", "F16", permute=False)  # a naive converter
    gates = '[gates.gguf_parity]\ntypes = ["F16"]\nmax_prompts = 3\n'
    (g,) = run(_config(tmp_path, tiny_base, adapter, gates)).report.gates
    assert g.verdict == "fail" and "F16 mean KL" in g.explanation
    assert g.details["types"]["F16"]["tokenizer"]["specials_equal"]  # the tokenizer was fine: the weights were not


def test_a_chat_template_edited_after_training_fails_template_drift(tmp_path, tiny_base, adapter, cache):
    from harness.core.hashing import sha256_bytes
    from harness.core.models import load_tokenizer

    ad = tmp_path / "adapter"
    shutil.copytree(adapter, ad)
    tok = load_tokenizer(tiny_base.dir)
    trained = tok.chat_template
    (ad / "training_manifest.json").write_text(json.dumps({"chat_template_sha256": sha256_bytes(trained.encode())}))
    tok.chat_template = trained.replace("<|im_start|>assistant", "<|im_start|>bot")  # edited after training
    tok.save_pretrained(ad)
    gates = "[gates.template_drift]\nmax_prompts = 3\nmax_new_tokens = 8\nmin_stop_rate = 0.0\n"
    (g,) = run(_config(tmp_path, tiny_base, ad, gates)).report.gates
    assert g.verdict == "fail"
    assert "differs from training: adapter, merged, gguf" in g.explanation


def test_a_merge_requantised_through_4bit_fails_merge_parity(tmp_path, tiny_base, adapter, cache):
    info = check_adapter(adapter, tiny_base)
    wrong = ensure_merged(tiny_base, info, onto="dequantized-nf4")
    shutil.move(wrong, export_dir(tiny_base, info) / "merged")  # shipped in place of the full-precision merge
    (g,) = run(_config(tmp_path, tiny_base, adapter, "[gates.merge_parity]\nmax_prompts = 3\n")).report.gates
    assert g.verdict == "fail" and g.details["parity"]["max_abs_logit"] > 1e-2


def test_export_cli_writes_merge_and_ggufs_and_never_overwrites(tmp_path, tiny_base, adapter, cache):
    out = tmp_path / "release"
    args = ["export", "--base", str(tiny_base.dir), "--adapter", str(adapter), "--out", str(out)]
    assert main([*args, "--gguf", "F16", "--gguf", "Q8_0"]) == 0
    assert (out / "merged" / "model.safetensors").is_file() and (out / "merged" / "generation_config.json").is_file()
    rt = open_gguf(out / "model-Q8_0.gguf")
    assert rt.tok.chat_template and rt.model.config.num_hidden_layers > 0
    assert main([*args, "--gguf", "F16"]) == 2


def test_rollback_reproduces_a_fresh_bundle_and_fails_an_altered_one(tmp_path, tiny_base, adapter, cache):
    gates = "[gates.rollback]\nmax_prompts = 2\nmax_new_tokens = 6\n"
    (g,) = run(_config(tmp_path, tiny_base, adapter, gates), tmp_path / "out").report.gates
    assert g.verdict == "pass", g.explanation
    assert g.details["reproduced"] == g.details["recorded"] == 2
    bundle = tmp_path / "bundle"
    cfg = _config(tmp_path, tiny_base, adapter, gates)
    assert main(["bundle", "--config", cfg, "--out", str(bundle), "--max-prompts", "2"]) == 0
    assert {"adapter", "merged", "model-F16.gguf", "recorded_outputs.json", "BUNDLE.json"} <= {
        p.name for p in bundle.iterdir()
    }
    named = _config(tmp_path, tiny_base, adapter, gates + f'bundle = "{bundle}"\n')
    assert run(named).report.gates[0].verdict == "pass"
    with open(bundle / "merged" / "generation_config.json", "a") as f:
        f.write("\n")  # one byte changed after bundling
    (g,) = run(named).report.gates
    assert g.verdict == "fail" and "altered merged/generation_config.json" in g.explanation
    (bundle / "model-F16.gguf").unlink()
    (g,) = run(named).report.gates
    assert g.verdict == "fail" and "missing model-F16.gguf" in g.explanation


def test_serving_gate_measures_latency_and_memory_against_budgets(tmp_path, tiny_base, adapter, cache):
    base = "[gates.serving]\nmax_prompts = 3\nmax_new_tokens = 8\n"
    (g,) = run(
        _config(
            tmp_path, tiny_base, adapter, base + "max_p95_latency_s = 60.0\nmax_adapter_mb = 50.0\nusd_per_hour = 2.5\n"
        )
    ).report.gates
    d = g.details
    assert g.verdict == "pass" and len(d["latencies_s"]) == 3 and d["new_tokens"] == 24
    assert d["tokens_per_s"] > 0 and d["peak_memory_mb"] > 0 and 0 < d["adapter_mb"] < 50
    # cost per million generated tokens = price per hour / tokens per hour * 1e6, for base, candidate and merged
    assert d["usd_per_million_tokens"] == pytest.approx(2.5 / (d["tokens_per_s"] * 3600) * 1e6)
    assert set(d["variants"]) == {"base", "candidate"} and d["variants"]["candidate"]["new_tokens"] == 24
    (table,) = [t for t in g.tables if t.title.startswith("Serving cost")]
    assert [r[0] for r in table.rows] == ["base", "candidate", "merged"] and all(float(r[5]) > 0 for r in table.rows)
    budget = "compare = false\nmin_tokens_per_s = 1e9\nusd_per_hour = 2.5\nmax_usd_per_million_tokens = 1e-6\n"
    (g,) = run(_config(tmp_path, tiny_base, adapter, base + budget)).report.gates
    assert g.verdict == "fail" and "Over budget: tokens/s, USD per million tokens" in g.explanation
    assert "variants" not in g.details or not g.details["variants"]


def test_promote_ships_the_gated_bundle_and_refuses_an_altered_one(tmp_path, tiny_base, adapter, cache):
    from harness.promote import PromotionRefused, promote

    cfg = _config(tmp_path, tiny_base, adapter, "[gates.rollback]\nmax_prompts = 2\nmax_new_tokens = 6\n")
    result = run(cfg, tmp_path / "out")
    assert result.passed
    dest = promote(tmp_path / "out" / "report.json", tmp_path / "registry").version.dir
    assert dest == tmp_path / "registry" / "v1"
    assert (dest / "bundle" / "BUNDLE.json").is_file() and (dest / "bundle" / "model-F16.gguf").is_file()
    bundle = result.report.gates[0].details["bundle"]
    with open(f"{bundle}/recorded_outputs.json", "a") as f:
        f.write(" ")
    with pytest.raises(PromotionRefused, match="bundle changed after gating"):
        promote(tmp_path / "out" / "report.json", tmp_path / "registry2")
    assert not (tmp_path / "registry2").exists() or not any((tmp_path / "registry2").iterdir())


def _llama_cpp() -> bool:
    from harness.release.shipping import llama_cpp_available

    return llama_cpp_available()


@pytest.mark.skipif(not _llama_cpp(), reason="llama-cpp-python is an optional extra (pip install .[llama])")
def test_the_exported_gguf_runs_in_llama_cpp(tmp_path, tiny_base, adapter, cache):
    gates = '[gates.gguf_parity]\ntypes = ["F32"]\nmax_prompts = 3\nllama_cpp_min_greedy_equal = 0.6\n'
    (g,) = run(_config(tmp_path, tiny_base, adapter, gates)).report.gates
    lc = g.details["types"]["F32"]["llama_cpp"]
    assert g.verdict == "pass", g.explanation
    assert lc["greedy_equal"] >= 0.6 and "in llama.cpp" in g.explanation


@pytest.mark.parametrize(("noise", "flips_count"), [(2e-4, False), (0.3, True)])
def test_near_ties_do_not_count_against_top1_agreement(tiny_base, noise, flips_count):
    """F16 rounding moves logits by ~0.05: an argmax that flips where the top two tokens were within 0.1 is a
    near-tie, not a broken export. A real perturbation still shows in the decisive agreement."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.core.runtime import HFRuntime
    from probes.parity import TIE_MARGIN, compare, reference

    ref = AutoModelForCausalLM.from_pretrained(tiny_base.dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_base.dir)
    other = copy.deepcopy(ref)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn(p.shape, generator=g) * noise)
    convs = [[{"role": "user", "content": t}] for t in ("What is a rollback?", "Explain a message queue.")]
    par = compare(reference(HFRuntime(ref, tok), convs, max_new_tokens=8), HFRuntime(other, tok), max_new_tokens=8)
    assert 0 < par.decisive_positions < par.positions  # a near-flat tiny model has both kinds of position
    if flips_count:
        assert par.top1_decisive < 1.0 and par.max_abs_logit > TIE_MARGIN
    else:
        assert par.max_abs_logit < TIE_MARGIN / 2  # no flip can happen where the lead is >= TIE_MARGIN
        assert par.top1_decisive == 1.0


def test_a_full_checkpoint_ships_through_every_release_check_and_promotes(tmp_path, tiny_base, adapter, cache):
    """A merged checkpoint as the candidate: merge_parity is n/a (nothing to merge), the GGUFs are exported from it,
    the template is checked across it and its GGUF, the bundle (no adapter) reproduces its outputs, serving measures
    it; promote copies the checkpoint and refuses once any of its files changed."""
    from harness.promote import PromotionRefused, promote

    full = shutil.copytree(ensure_merged(tiny_base, check_adapter(adapter, tiny_base)), tmp_path / "merged-release")
    gates = GATES.replace('types = ["F32", "F16", "Q8_0"]', 'types = ["F16"]') + (
        "[gates.rollback]\nmax_prompts = 2\nmax_new_tokens = 6\n"
        "[gates.serving]\nmax_prompts = 2\nmax_new_tokens = 4\nmax_p95_latency_s = 60.0\n"
    )
    cfg = tmp_path / "release.toml"
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\ncandidate = "{full}"\n[run]\ncache_dir = "{tmp_path}/mc"\n{gates}'
    )
    res = run(cfg, tmp_path / "out")
    g = {x.name: x for x in res.report.gates}
    assert g["merge_parity"].verdict == "n/a" and not g["merge_parity"].blocks
    assert all(x.verdict == "pass" for n, x in g.items() if n != "merge_parity"), [x.explanation for x in g.values()]
    assert res.passed and res.report.candidate["form"] == "full"
    assert g["gguf_parity"].details["merged_dir"] == str(full.resolve())  # the checkpoint is its own merge
    bundle = g["rollback"].details["bundle"]
    assert not (tmp_path / bundle / "adapter").exists() and g["rollback"].details["reproduced"] == 2
    assert g["serving"].details["adapter_mb"] == 0 and g["serving"].details["model"] == str(full.resolve())
    version = promote(tmp_path / "out" / "report.json", tmp_path / "registry").version
    assert version.form == "full" and (version.model / "config.json").is_file()
    with open(full / "config.json", "a") as f:
        f.write("\n")  # one byte of the checkpoint's config changed after gating
    with pytest.raises(PromotionRefused):
        promote(tmp_path / "out" / "report.json", tmp_path / "registry2")
