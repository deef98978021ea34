"""The fine-tune runner on a tiny model: outputs, data handling, preflight, QLoRA, CPT, NaN."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from fine_tune import FineTuneSpec, write_demo_data
from fine_tune.datasets import split_train_valid, template_diversity
from fine_tune.preflight import preflight_sft
from fine_tune.runner import train, train_sample
from harness.cli import main
from harness.core.data import load_dataset
from harness.core.errors import HarnessError
from harness.core.models import (
    attach_adapter,
    check_adapter,
    fingerprint,
    load_base_model,
    load_tokenizer,
    resolve_base,
)
from tests.helpers import tensorboard_scalars, write_jsonl

FAST = dict(max_steps=4, batch_size=4, logging_steps=1, eval_steps=2, save_steps=2, warmup_steps=0, r=4, alpha=8)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    return write_demo_data(tmp_path_factory.mktemp("demo"), policy=False, n_train=24, n_valid=8, n_eval=8)


def test_train_cli_writes_adapter_log_curve_and_manifest(tmp_path, tiny_base, demo_data):
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\n\n[fine_tune]\ntrain = "{demo_data["train"]}"\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in FAST.items())
    )
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 0
    stage = tmp_path / "out" / "sft"
    info = check_adapter(stage / "adapter", tiny_base)
    assert sorted(info.target_modules) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert not (stage / "adapter" / "training_args.bin").exists()  # no pickle shipped
    assert not (stage / "checkpoints").exists()  # checkpoints are only kept while a run can be resumed
    assert (stage / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    log = json.loads((stage / "train_log.json").read_text())
    assert [r["step"] for r in log if r["train_loss"] is not None] == [1, 2, 3, 4]
    assert [r["step"] for r in log if r["eval_loss"] is not None] == [0, 2, 4]
    assert [r["step"] for r in log if r["train_sample_loss"] is not None] == [0, 2, 4]  # same evaluations
    assert all(r["eval_loss/triage"] > 0 for r in log if r["eval_loss"] is not None)
    assert (stage / "train_log.csv").read_text().startswith("step,epoch,train_loss,eval_loss,train_sample_loss")
    m = json.loads((stage / "adapter" / "training_manifest.json").read_text())
    assert m["base"]["weights_sha256"] == fingerprint(tiny_base).weights_sha256
    assert m["data"]["train"]["sha256"] == load_dataset(demo_data["train"]).sha256
    assert m["data"]["valid"] == {"records": 3, "split": "random"}  # 10% of 24, seeded
    assert m["data"]["train"]["records"] == 21
    assert m["data"]["train_sample"]["records"] == 3 and m["data"]["train_sample"]["tasks"] == {"triage": 3}
    assert m["train_sample_loss"] == log[-1]["train_sample_loss"]
    split = split_train_valid(load_dataset(demo_data["train"]), 0.1, seed=0)
    assert m["template_diversity"]["count"] == len({r.meta["template"] for r in split.train})
    assert m["compute_dtype"] == "float32" and m["bf16"] is False and m["seed"] == 0
    assert m["config"]["r"] == 4 and m["tokens_per_s"] > 0 and m["wall_time_s"] > 0
    assert m["valid_loss"] == log[-1]["eval_loss"] and m["valid_loss_start"] == log[0]["eval_loss"]
    assert m["packages"]["trl"] and m["trainable_params"] > 0
    # a second run into the same directory is refused, not overwritten
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2


def test_train_sample_and_validation_losses_are_measured_alike(tmp_path, tiny_base):
    """With the training file as the validation file, the train sample is those same rows: at every evaluation the two
    logged losses, and each task's, are equal, so the gate's gap measures the data, never how it was measured."""
    rows = [json.loads(line) for line in open(write_demo_data(tmp_path / "d", n_train=24, n_valid=8)["train"])]
    mixed = [
        r for t, n in (("triage", 6), ("policy", 4), ("general", 2)) for r in [x for x in rows if x["task"] == t][:n]
    ]
    same = write_jsonl(tmp_path / "same.jsonl", mixed)
    outcome = train(FineTuneSpec(train=str(same), valid=str(same), **FAST), tiny_base, tmp_path / "out")
    evals = [r for r in json.loads(outcome.stages[0].log_json.read_text()) if r["eval_loss"] is not None]
    assert [r["step"] for r in evals] == [0, 2, 4] and evals[0]["eval_loss"] != evals[-1]["eval_loss"]  # it learned
    for r in evals:
        assert r["train_sample_loss"] == pytest.approx(r["eval_loss"], rel=1e-6)
        for task in ("triage", "policy", "general"):
            assert r[f"train_sample_loss/{task}"] == pytest.approx(r[f"eval_loss/{task}"], rel=1e-6)
    assert len({round(r[f"eval_loss/{t}"], 3) for r in evals[-1:] for t in ("triage", "policy", "general")}) == 3

    from gates import GateContext, get_gate
    from gates.overfit import OverfitParams
    from probes.training_log import read_training_log

    gdef, params = get_gate("overfit"), OverfitParams()
    (req,) = gdef.requests(params)
    log = read_training_log(outcome.stages[0].manifest_path)
    g = gdef.decide(params, GateContext("overfit", True, 0, {(req, "candidate"): log}))
    assert g.details["compared"] == "train_sample" and abs(g.delta) < 1e-5
    assert sorted(g.details["gap_by_task"]) == ["general", "policy", "triage"] and len(g.details["gaps"]) == 3


def test_train_sample_is_seeded_sized_like_validation_and_mirrors_its_task_mix(tmp_path):
    paths = write_demo_data(tmp_path, n_train=60, n_valid=16, n_eval=8)  # mixed validation, as in the demo
    tr, va = load_dataset(paths["train"]).records, load_dataset(paths["valid"]).records
    sample = train_sample(tr, va, 64, seed=0)
    assert (
        Counter(r.meta["task"] for r in sample)
        == Counter(r.meta["task"] for r in va)
        == Counter(triage=5, policy=10, general=3)
    )
    assert not {r.preview(10**4) for r in va} & {r.preview(10**4) for r in tr}  # held out: no training row repeated
    assert [r.line for r in sample] == sorted(r.line for r in sample) and {r.id for r in sample} <= {r.id for r in tr}
    assert sample == train_sample(tr, va, 64, seed=0) and sample != train_sample(tr, va, 64, seed=1)
    assert len(train_sample(tr, va, 6, seed=0)) <= 7  # capped
    triage_only = [r for r in va if r.meta["task"] == "triage"]
    assert {r.meta["task"] for r in train_sample(tr, triage_only, 64, seed=0)} == {"triage"}
    untagged = load_dataset(write_jsonl(tmp_path / "v.jsonl", [{"prompt": "q", "completion": "a"}] * 4)).records
    assert len(train_sample(tr, untagged, 64, seed=0)) == 4  # no task in common: a plain sample


def test_refuses_to_train_on_an_eval_set(tmp_path, tiny_base, demo_data):
    copy = shutil.copy(demo_data["train"], tmp_path / "same-content.jsonl")
    cfg = tmp_path / "release.toml"
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\nadapter = "x"\n\n[fine_tune]\ntrain = "{demo_data["train"]}"\n'
        f'\n[gates.perplexity]\ndata = "{copy}"\n'
    )
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out" / "sft" / "adapter").exists()


def _tokenizer_with_template(tmp_path, tiny_base, template: str):
    d = tmp_path / "tok"
    shutil.copytree(tiny_base.dir, d)
    (d / "chat_template.jinja").write_text(template)
    return load_tokenizer(d)


def _pairs(path):
    return [(r, list(r.messages)) for r in load_dataset(path).records]


def test_preflight_passes_the_real_template(tiny_base, demo_data):
    preflight_sft(_pairs(demo_data["train"]), load_tokenizer(tiny_base.dir), 512, where="train")


def test_preflight_catches_a_template_that_drops_the_end_of_turn(tmp_path, tiny_base, demo_data):
    no_eot = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tok = _tokenizer_with_template(tmp_path, tiny_base, no_eot)
    with pytest.raises(HarnessError) as e:
        preflight_sft(_pairs(demo_data["train"]), tok, 512, where="train.jsonl")
    msg = str(e.value)
    assert "preflight failed on 24 of 24 examples" in msg and "line 1 (train-1-0000)" in msg
    assert "does not end with an end-of-turn token" in msg


def test_preflight_catches_a_prompt_that_is_not_a_prefix(tmp_path, tiny_base, demo_data):
    # the generation prompt says "bot" while the rendered answer turn says "assistant"
    broken = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>bot\n{% endif %}"
    )
    tok = _tokenizer_with_template(tmp_path, tiny_base, broken)
    with pytest.raises(HarnessError, match="not a prefix"):
        preflight_sft(_pairs(demo_data["train"]), tok, 512, where="train.jsonl")


def test_preflight_catches_answers_cut_by_max_length(tiny_base, demo_data):
    with pytest.raises(HarnessError, match="no supervised tokens|cut by max_length"):
        preflight_sft(_pairs(demo_data["train"]), load_tokenizer(tiny_base.dir), 40, where="train.jsonl")


def test_split_by_source_and_template_diversity(tmp_path):
    rows = [{"id": f"r{i}", "prompt": f"Q{i}", "completion": "A", "source": f"s{i % 5}"} for i in range(50)]
    split = split_train_valid(load_dataset(write_jsonl(tmp_path / "s.jsonl", rows)), 0.1, seed=3)
    assert split.method == "by source" and len(split.valid) == 10
    held = {r.meta["source"] for r in split.valid}
    assert not held & {r.meta["source"] for r in split.train}

    few = [{"prompt": f"Classify this ticket:\n{i} broke", "completion": "A", "id": str(i)} for i in range(20)]
    few += [{"prompt": f"Ticket {i} broke\nWhat category?", "completion": "A", "id": f"b{i}"} for i in range(20)]
    div = template_diversity(load_dataset(write_jsonl(tmp_path / "few.jsonl", few)).records)
    assert div.count == 2 and div.method.startswith("estimated") and "fewer than 5" in div.warning


def test_template_diversity_estimate_matches_the_generator(tmp_path, demo_data):
    rows = [json.loads(line) for line in open(demo_data["train"])]
    truth = len({r.pop("template") for r in rows})
    est = template_diversity(load_dataset(write_jsonl(tmp_path / "t.jsonl", rows)).records)
    assert est.count == truth and est.method.startswith("estimated")


def test_qlora_trains_and_its_adapter_loads_on_the_full_precision_base(tmp_path, tiny_base, demo_data):
    import warnings

    spec = FineTuneSpec(train=str(demo_data["train"]), method="qlora", **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = train(spec, tiny_base, tmp_path / "q")  # validation runs between training steps
    # no backward through a kernel without one (bitsandbytes' CPU inference repacking) after an eval
    assert not [w for w in caught if "autograd kernel was not registered" in str(w.message)]
    m = json.loads(outcome.stages[0].manifest_path.read_text())
    assert m["quantization"] == {"type": "nf4", "double_quant": True} and m["compute_dtype"] == "float32"
    info = check_adapter(outcome.adapter_dir, tiny_base)
    model = attach_adapter(load_base_model(tiny_base), info)
    assert not any("4bit" in type(mod).__name__ for mod in model.modules())  # evaluated in full precision
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # it learned something


def test_cpt_lowers_held_out_perplexity_of_the_domain_text(tmp_path, tiny_base):
    from fine_tune.demo.triage import write_cpt_text
    from harness.pipeline import run
    from tests.helpers import write_config

    text = write_cpt_text(tmp_path / "cpt.jsonl", n=120, seed=4)
    held = write_cpt_text(tmp_path / "held.jsonl", n=20, seed=5)
    spec = FineTuneSpec(
        stage="cpt",
        cpt_data=str(text),
        max_steps=8,
        batch_size=4,
        max_length=64,
        learning_rate=2e-3,
        warmup_steps=0,
        eval_steps=4,
        save_steps=100,
        r=8,
        alpha=16,
    )
    outcome = train(spec, tiny_base, tmp_path / "cpt")
    m = json.loads(outcome.stages[0].manifest_path.read_text())
    assert "down_proj" in m["target_modules"]  # CPT adapts the FFN too
    cfg = write_config(
        tmp_path / "r.toml",
        base=str(tiny_base.dir),
        adapter=outcome.adapter_dir,
        data=held,
        cache_dir=tmp_path / "cache",
        min_relative_improvement=0.05,
    )
    (g,) = run(cfg).report.gates
    assert g.verdict == "pass", g.explanation


def test_nan_loss_is_a_clear_error(tmp_path, tiny_base, demo_data):
    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(tiny_base.dir, broken)
    weights = load_file(broken / "model.safetensors")
    weights["model.norm.weight"] = torch.full_like(weights["model.norm.weight"], float("nan"))
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    spec = FineTuneSpec(train=str(demo_data["train"]), **FAST)
    with pytest.raises(HarnessError, match="training diverged"):
        train(spec, resolve_base(str(broken)), tmp_path / "nan")


def test_rank_sweep_gates_each_rank_and_ranks_them(tmp_path, tiny_base, demo_data):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\n\n[run]\ncache_dir = "{tmp_path / "cache"}"\n\n'
        f'[fine_tune]\ntrain = "{demo_data["train"]}"\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in FAST.items())
        + 'report_to = "tensorboard"\n'
        + f'\n[gates.perplexity]\ndata = "{demo_data["eval"]}"\nmin_relative_improvement = 0.0\n'
        + '\n[gates.regression]\nscore = "likelihood"\nitems = 40\nmax_items = 0\nmax_drop = 0.2\n'
        + "\n[gates.contamination]\n"  # not a quality gate: not part of the sweep
    )
    sw = ["sweep", "--config", str(cfg), "--r", "2,8", "--out", str(tmp_path / "sw"), "--log-to", "tensorboard"]
    assert main(sw) == 0
    table = (tmp_path / "sw" / "sweep.md").read_text()
    assert "gated on `perplexity`, `regression`" in table and "contamination" not in table
    rows = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert sorted(r["r"] for r in rows) == [2, 8]
    by_r = {r["r"]: r for r in rows}
    assert by_r[8]["trainable_params"] == 4 * by_r[2]["trainable_params"]  # LoRA parameters grow linearly with r
    for row in rows:
        report = json.loads(Path(row["report"]).with_suffix(".json").read_text())
        assert report["candidate"]["adapter"] == row["adapter_dir"]  # each rank gated on its own adapter
        assert [g["name"] for g in report["gates"]] == ["perplexity", "regression"]
        assert (
            row["gates"] == {g["name"]: g["verdict"] for g in report["gates"]} and row["verdict"] == report["verdict"]
        )
        # a fresh process per rank: its own peak, more than the model and torch, far less than this machine
        assert row["memory_kind"] == "rss" and 150 < row["peak_memory_mb"] < 8000
        assert f"| {row['r']} | **{row['verdict']}** |" in table
        logged = tensorboard_scalars(tmp_path / "sw" / f"r{row['r']}" / "sft" / "tensorboard")  # each rank's own run
        assert logged["release/passed"] == [(4, float(row["verdict"] == "pass"))] and "train/loss" in logged
    assert [r["r"] for r in rows] == [r["r"] for r in sorted(rows, key=lambda r: (r["verdict"] != "pass", r["r"]))]
    assert (tmp_path / "sw" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["sweep", "--config", str(cfg), "--r", "8,x"]) == 2
    assert main(["sweep", "--config", str(cfg), "--r", "8", "--gates", "perplexity"]) == 2  # regression required
    assert main(["sweep", "--config", str(cfg), "--r", "8", "--gates", "judge,regression"]) == 2  # not configured


def test_sweep_table_puts_the_smallest_passing_rank_first(tmp_path):
    from harness.sweep import SweepRow, render_table

    def row(r: int, verdict: str) -> SweepRow:
        gates = {"perplexity": "pass", "regression": verdict}
        deltas = {"perplexity": 0.12, "regression": -0.01}
        return SweepRow(
            r,
            1000 * r,
            10.0 * r,
            1.0,
            900.0 + r,
            "rss",
            tmp_path / f"r{r}",
            verdict,
            gates,
            deltas,
            tmp_path / f"r{r}.md",
        )

    gates = ("perplexity", "regression")
    text = render_table(
        [row(4, "fail"), row(32, "pass"), row(16, "pass")], gates, {"regression": "pass rate"}, tmp_path
    )
    lines = [ln for ln in text.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert [int(ln.split("|")[1]) for ln in lines] == [16, 32, 4]
    assert "Smallest rank that passes every gate: r = 16" in text
    assert "916 (RSS)" in text
    assert (
        "| pass (+0.12) | fail (-0.01) |" in text and "[report](r4.md)" in text and "- `regression`: pass rate" in text
    )
    assert "No rank passes" in render_table([row(4, "fail")], gates, {}, tmp_path)
