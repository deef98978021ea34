"""The shipped `accelerate launch` configs load as accelerate configs (they cannot run here: no GPU)."""

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
