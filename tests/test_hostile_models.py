"""Broken and hostile model files (issue 25): each is bad input, refused through the real CLI (`harness gate` and
`harness plan` exit 2) before any model loads, naming the file (and the tensor or key) and the fix; nothing is
written. Damaged copies of the session's tiny base and zero adapter, edited in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.model_files import check_gguf_header, read_safetensors_header
from harness.core.models import check_adapter
from tests.helpers import TEXT_ROWS, write_config, write_jsonl

TENSOR = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, tiny_base) -> Path:
    """The tiny base exported as an F16 GGUF (a valid file to damage)."""
    from harness.release.export import export_gguf

    return export_gguf(tiny_base.dir, tmp_path_factory.mktemp("gguf") / "tiny-F16.gguf", "F16")


@pytest.fixture(autouse=True)
def no_model_loads(monkeypatch, tiny_base, tiny_zero_adapter) -> None:
    """Loading any model (transformers or PEFT) fails the test: every refusal here comes first."""
    import peft
    import transformers

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the broken file was refused")

    for cls, name in [
        (transformers.AutoModelForCausalLM, "from_pretrained"),
        (transformers.AutoModelForCausalLM, "from_config"),
        (transformers.AutoTokenizer, "from_pretrained"),
        (peft.PeftModel, "from_pretrained"),
    ]:
        monkeypatch.setattr(cls, name, boom)


def refused(tmp_path: Path, capsys, *expected: str, base: object, **model: object) -> str:
    """`harness gate` and `harness plan` on a config naming `base` and `model` (adapter=, candidate=, reference=)
    both exit 2 with every `expected` text and a fix, and the --out directory is never created. Returns the gate's
    message."""
    data = write_jsonl(tmp_path / "eval.jsonl", TEXT_ROWS)
    candidate = model.get("candidate", model.get("adapter"))
    cfg = write_config(
        tmp_path / "release.toml", base=str(base), adapter=candidate, data=data, cache_dir=tmp_path / "c"
    )
    text = cfg.read_text()
    if "candidate" in model:
        text = text.replace(f'adapter = "{candidate}"', f'candidate = "{candidate}"')
    if "reference" in model:
        text = text.replace("[model]\n", f'[model]\nreference = "{model["reference"]}"\n')
    cfg.write_text(text)
    out = tmp_path / "out"
    messages = []
    for args in (["gate", "--config", str(cfg), "--out", str(out)], ["plan", "--config", str(cfg)]):
        code = main(args)
        captured = capsys.readouterr()
        message = captured.err + captured.out
        assert code == 2, message
        assert "Traceback" not in message and "fix:" in message
        for text in expected:
            assert text in message, message
        messages.append(message)
    assert not out.exists()
    return messages[0]


def copy_adapter(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / "adapter"))


def copy_model(src: Path, tmp_path: Path, name: str = "model") -> Path:
    return Path(shutil.copytree(src, tmp_path / name))


def edit_config(adapter: Path, edit: Callable[[dict], None]) -> None:
    path = adapter / "adapter_config.json"
    cfg = json.loads(path.read_text())
    edit(cfg)
    path.write_text(json.dumps(cfg))


def edit_header(path: Path, edit: Callable[[dict], None]) -> None:
    """Rewrite a safetensors file's header in place (its data stays as it was)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    edit(header)
    new = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])


def cut(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


# ---------------------------------------------------------------- adapter_model.safetensors


def test_adapter_weights_cut_to_4_bytes(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    cut(adapter / "adapter_model.safetensors", 4)
    refused(
        tmp_path,
        capsys,
        f"{adapter / 'adapter_model.safetensors'} (model.adapter)",
        "not a safetensors file: it is 4 bytes",
        base=tiny_base.dir,
        adapter=adapter,
    )


def test_adapter_weights_cut_in_half(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    weights = adapter / "adapter_model.safetensors"
    cut(weights, weights.stat().st_size // 2)
    message = refused(
        tmp_path,
        capsys,
        str(weights),
        "the file is truncated: tensor 'base_model.model.",
        base=tiny_base.dir,
        adapter=adapter,
    )
    assert ".lora_" in message and "bytes of data follow the header" in message


def test_adapter_lora_tensor_of_int_dtype(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    edit_header(adapter / "adapter_model.safetensors", lambda h: h[TENSOR].update(dtype="I32"))
    refused(tmp_path, capsys, f"tensor {TENSOR!r} is I32", "2-D float matrix", base=tiny_base.dir, adapter=adapter)


def test_adapter_offsets_that_do_not_match_the_shape(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    edit_header(adapter / "adapter_model.safetensors", lambda h: h[TENSOR].update(shape=[8, 64]))
    refused(
        tmp_path,
        capsys,
        f"tensor {TENSOR!r}",
        "hold 1024 bytes, but shape [8, 64] of F32 needs 2048",
        base=tiny_base.dir,
        adapter=adapter,
    )


# ---------------------------------------------------------------- adapter_config.json


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda cfg: cfg.__setitem__(key, value)


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        ("[]", "adapter_config.json holds a JSON array, not an object"),
        ('"LORA"', "adapter_config.json holds a JSON string, not an object"),
        ("{}", "peft_type is missing"),
        ("{not json", "adapter_config.json is not valid JSON"),
        (lambda cfg: cfg.pop("r"), "r (the LoRA rank) is missing"),
        (_set("r", "8"), "r is '8', not a positive integer"),
        (_set("r", 0), "r is 0, not a positive integer"),
        (_set("target_modules", 5), "target_modules is 5, not a list of module names"),
        (_set("target_modules", {"q_proj": True}), "target_modules is {'q_proj': True}, not a list"),
        (_set("target_modules", ["q_proj", 3]), "target_modules is ['q_proj', 3], not a list"),
        (_set("target_modules", "q_proj"), "the regular expression 'q_proj', which matches no module of the base"),
        (_set("target_modules", "(q_proj"), "target_modules holds '(q_proj', which is not a regular expression"),
        (_set("rank_pattern", {"q_proj": "4"}), "rank_pattern is {'q_proj': '4'}, not an object"),
        (_set("base_model_name_or_path", ["x"]), "base_model_name_or_path is ['x'], not a model id or path"),
    ],
    ids=[
        "array",
        "string",
        "empty",
        "not-json",
        "no-r",
        "r-str",
        "r-0",
        "tm-int",
        "tm-dict",
        "tm-mixed",
        "tm-re",
        "bad-re",
    ]
    + ["rank-pattern", "base-name"],
)
def test_broken_adapter_config(tmp_path, capsys, tiny_base, tiny_zero_adapter, write, expected):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    if isinstance(write, str):
        (adapter / "adapter_config.json").write_text(write)
    else:
        edit_config(adapter, write)
    refused(
        tmp_path,
        capsys,
        f"{adapter / 'adapter_config.json'} (model.adapter)",
        expected,
        base=tiny_base.dir,
        adapter=adapter,
    )


def test_adapter_config_not_utf8(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    path = adapter / "adapter_config.json"
    path.write_bytes(path.read_bytes().replace(b'"LORA"', b'"L\xe9RA"'))
    refused(
        tmp_path,
        capsys,
        str(path),
        "the adapter config is not UTF-8 text: byte 0xe9",
        base=tiny_base.dir,
        adapter=adapter,
    )


# ---------------------------------------------------------------- adapter config vs its tensors vs the base


def test_config_rank_differs_from_the_tensors(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)  # trained at r=4
    edit_config(adapter, _set("r", 8))
    refused(
        tmp_path,
        capsys,
        f"{adapter / 'adapter_model.safetensors'} (model.adapter)",
        f"tensor {TENSOR!r} has rank 4, but adapter_config.json says r = 8",
        "set r (and rank_pattern) in adapter_config.json",
        base=tiny_base.dir,
        adapter=adapter,
    )


def test_rank_pattern_is_checked_per_module(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    edit_config(adapter, _set("rank_pattern", {"q_proj": 4, "v_proj": 16}))
    message = refused(
        tmp_path,
        capsys,
        "self_attn.v_proj.lora_A.weight' has rank 4, but adapter_config.json says rank_pattern['v_proj'] = 16",
        base=tiny_base.dir,
        adapter=adapter,
    )
    assert "q_proj.lora" not in message
    edit_config(adapter, _set("rank_pattern", {"q_proj": 4, "v_proj": 4}))
    assert check_adapter(adapter, tiny_base).r == 4


def test_targeted_module_without_tensors(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    edit_config(adapter, _set("target_modules", ["q_proj", "v_proj", "k_proj"]))
    refused(
        tmp_path,
        capsys,
        "model.layers.0.self_attn.k_proj is targeted but has no LoRA tensors",
        base=tiny_base.dir,
        adapter=adapter,
    )


def test_tensors_for_a_module_the_config_does_not_target(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    edit_config(adapter, _set("target_modules", ["q_proj"]))
    refused(
        tmp_path,
        capsys,
        "model.layers.0.self_attn.v_proj has LoRA tensors but target_modules does not name it",
        base=tiny_base.dir,
        adapter=adapter,
    )


def test_lora_a_without_its_lora_b(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    weights = adapter / "adapter_model.safetensors"
    b = TENSOR.replace("lora_A", "lora_B")
    edit_header(weights, lambda h: h.__setitem__(b.replace("lora_B", "not_lora"), h.pop(b)))
    refused(tmp_path, capsys, "model.layers.0.self_attn.q_proj has only lora_A", base=tiny_base.dir, adapter=adapter)


def test_tensor_for_a_module_the_base_lacks(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    weights = adapter / "adapter_model.safetensors"
    edit_header(weights, lambda h: h.__setitem__(TENSOR.replace("layers.0", "layers.9"), h.pop(TENSOR)))
    refused(
        tmp_path,
        capsys,
        "adapter does not fit the base model: model.layers.9.self_attn.q_proj: not in the base model",
        base=tiny_base.dir,
        adapter=adapter,
    )


# ---------------------------------------------------------------- GGUF files


def test_gguf_of_random_bytes(tmp_path, capsys):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"\x00junk" + os.urandom(4096))
    refused(tmp_path, capsys, f"{gguf} (model.base): not a GGUF file: it starts with", base=gguf, adapter=tmp_path)


def test_gguf_magic_then_junk(tmp_path, capsys):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + struct.pack("<I", 99) + os.urandom(4096))
    refused(
        tmp_path, capsys, str(gguf), "GGUF version 99; transformers reads versions 2 and 3", base=gguf, adapter=tmp_path
    )


def test_gguf_cut_in_half(tmp_path, capsys, tiny_gguf):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size // 2])
    refused(tmp_path, capsys, str(gguf), "the file is truncated: tensor '", base=gguf, adapter=tmp_path)


def test_gguf_cut_inside_its_metadata(tmp_path, capsys, tiny_gguf):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(tiny_gguf.read_bytes()[:300])
    refused(tmp_path, capsys, str(gguf), "it is truncated", base=gguf, adapter=tmp_path)


def test_a_valid_gguf_passes_the_header_check(tiny_gguf):
    check_gguf_header(tiny_gguf)


# ---------------------------------------------------------------- full model directories


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: (d / "model.safetensors").write_bytes(os.urandom(1000)), "model.safetensors (model.base): not a "),
        (
            lambda d: (d / "model.safetensors").write_bytes(struct.pack("<Q", 2**63) + b"{}"),
            "header of 9223372036854775808 bytes, but only 2 bytes follow",
        ),
        (lambda d: (d / "config.json").write_text("{not json"), "config.json (model.base): config.json is not valid"),
        (lambda d: (d / "config.json").write_text("[]"), "config.json (model.base): config.json holds a JSON array"),
        (lambda d: (d / "config.json").write_bytes(b'{"x": "\xff"}'), "the model config is not UTF-8 text"),
        (lambda d: (d / "config.json").write_text("{}"), "config.json (model.base): config.json names no model_type"),
        (lambda d: (d / "config.json").unlink(), "has no config.json, so it is not a Hugging Face model"),
        (lambda d: (d / "tokenizer_config.json").write_text("{oops"), "tokenizer_config.json is not valid JSON"),
        (lambda d: (d / "tokenizer.json").write_text("[]"), "tokenizer.json holds a JSON array, not an object"),
        (lambda d: (d / "tokenizer.json").unlink(), "(model.base): the model directory has no tokenizer"),
    ],
    ids=[
        "random-weights",
        "header-2**63",
        "config-not-json",
        "config-array",
        "config-not-utf8",
        "config-no-model-type",
        "no-config",
        "tokenizer-config-not-json",
        "tokenizer-array",
        "no-tokenizer",
    ],
)
def test_broken_base_directory(tmp_path, capsys, tiny_base, tiny_zero_adapter, damage, expected):
    base = copy_model(tiny_base.dir, tmp_path)
    damage(base)
    refused(tmp_path, capsys, str(base), expected, base=base, adapter=tiny_zero_adapter)


# ---------------------------------------------------------------- the candidate and the reference


def test_full_candidate_with_junk_weights(tmp_path, capsys, tiny_base):
    full = copy_model(tiny_base.dir, tmp_path, "full")
    (full / "model.safetensors").write_bytes(os.urandom(1000))
    refused(tmp_path, capsys, f"{full / 'model.safetensors'} (model.candidate)", base=tiny_base.dir, candidate=full)


def test_candidate_adapter_with_the_wrong_rank(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    adapter = copy_adapter(tiny_zero_adapter, tmp_path)
    edit_config(adapter, _set("r", 8))
    refused(tmp_path, capsys, "(model.candidate)", "has rank 4, but", base=tiny_base.dir, candidate=adapter)


def test_reference_adapter_cut_to_4_bytes(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    reference = copy_adapter(tiny_zero_adapter, tmp_path)
    cut(reference / "adapter_model.safetensors", 4)
    refused(
        tmp_path,
        capsys,
        f"{reference / 'adapter_model.safetensors'} (model.reference)",
        base=tiny_base.dir,
        adapter=tiny_zero_adapter,
        reference=reference,
    )


def test_reference_full_directory_with_a_broken_config(tmp_path, capsys, tiny_base, tiny_zero_adapter):
    reference = copy_model(tiny_base.dir, tmp_path, "ref")
    (reference / "config.json").write_text("[]")
    refused(
        tmp_path,
        capsys,
        f"{reference / 'config.json'} (model.reference)",
        base=tiny_base.dir,
        adapter=tiny_zero_adapter,
        reference=reference,
    )


@pytest.mark.parametrize("key", ["reference", "candidate"])
def test_gguf_reference_or_candidate_of_random_bytes(tmp_path, capsys, tiny_base, tiny_zero_adapter, key):
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(os.urandom(2048))
    model = {"adapter": tiny_zero_adapter, "reference": gguf} if key == "reference" else {"candidate": gguf}
    refused(tmp_path, capsys, f"{gguf} (model.{key}): not a GGUF file", base=tiny_base.dir, **model)


# ---------------------------------------------------------------- the header reader itself


def _safetensors(path: Path, header: object, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _f32(begin: int, end: int) -> dict:
    return {"dtype": "F32", "shape": [1], "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    ("header", "data", "expected"),
    [
        ([], b"", "its header is a JSON array, not an object"),
        ({"t": {"shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "tensor 't' in the header: dtype None"),
        ({"t": {"dtype": "F32", "data_offsets": [0, 4]}}, b"\0" * 4, "shape None is not a list"),
        ({"t": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "data_offsets None is not a pair"),
        ({"t": _f32(4, 0)}, b"\0" * 4, "hold -4 bytes"),
        ({"t": [1]}, b"", "its entry is a JSON array"),
        ({"__metadata__": [1]}, b"", "__metadata__ is not an object of strings"),
        ({"a": _f32(0, 4), "b": _f32(2, 6)}, b"\0" * 6, "overlaps the tensor before it"),
        ({"t": _f32(4, 8)}, b"\0" * 8, "leaves 4 bytes unused before it"),
        ({"t": _f32(0, 4)}, b"\0" * 9, "5 bytes follow the last tensor"),
    ],
    ids=["array", "no-dtype", "no-shape", "no-offsets", "reversed", "entry", "metadata", "overlap", "gap", "tail"],
)
def test_safetensors_header_reader_refuses(tmp_path, header, data, expected):
    path = _safetensors(tmp_path / "x.safetensors", header, data)
    with pytest.raises(HarnessError) as e:
        read_safetensors_header(path, key="model.base")
    assert expected in str(e.value) and f"{path} (model.base)" in str(e.value) and "fix:" in str(e.value)


def test_safetensors_header_reader_reads_a_valid_file(tmp_path):
    header = {"__metadata__": {"format": "pt"}, "t": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}}
    tensors = read_safetensors_header(_safetensors(tmp_path / "x.safetensors", header, b"\0" * 12))
    assert tensors["t"].shape == (2, 3) and tensors["t"].is_float and list(tensors) == ["t"]
