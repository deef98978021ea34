"""The shipped `accelerate launch` configs load as accelerate configs (they cannot run here: no GPU), and the
flags `harness serve --vllm` starts vLLM with."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name, kind, key, want",
    [
        ("fsdp.yaml", "FSDP", "fsdp_config", {"fsdp_version": 2}),
        ("deepspeed-zero3.yaml", "DEEPSPEED", "deepspeed_config", {"zero_stage": 3}),
    ],
)
def test_accelerate_configs_load(name, kind, key, want):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ROOT / "examples" / "accelerate" / name))
    assert cfg.distributed_type.name == kind and cfg.num_processes > 1
    assert want.items() <= getattr(cfg, key).items()
    assert "harness.cli train" in (ROOT / "examples" / "accelerate" / name).read_text()  # the command it is for


def test_vllm_server_flags_come_from_the_adapters(tmp_path, monkeypatch):
    """`harness serve --vllm`: LoRA on, a rank vLLM accepts that holds every adapter's r, the adapters by name,
    prefix caching off (else no prompt log-probabilities), and on a CPU a KV cache of a set size."""
    import json

    from harness.release.vllm_server import command

    dirs = {}
    for name, r in (("small", 8), ("big", 24)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps({"r": r}))
        dirs[name] = tmp_path / name
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "3")
    cmd = command(tmp_path / "model", dirs, python="py", port=8123, cpu=True)
    flag = {a: cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a.startswith("--")}
    assert "--enable-lora" in cmd and "--no-enable-prefix-caching" in cmd
    assert flag["--max-lora-rank"] == "32" and flag["--max-loras"] == "2" and flag["--port"] == "8123"
    assert f"small={dirs['small'].resolve()}" in cmd and f"big={dirs['big'].resolve()}" in cmd
    assert flag["--kv-cache-memory-bytes"] == str(3 * 2**30) and flag["--dtype"] == "float32"
    bare = command(tmp_path / "model", {}, python="py", port=8123, cpu=False)
    assert "--enable-lora" not in bare and "--kv-cache-memory-bytes" not in bare
