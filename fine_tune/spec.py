"""The `[fine_tune]` section: what `harness train` runs. Every field is a TOML key of that table."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.core.tracking import TRACKERS

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
FFN = ("gate_proj", "up_proj", "down_proj")
METHODS = ("lora", "qlora", "full")
STAGES = ("sft", "cpt", "cpt+sft", "dpo", "sft+dpo", "cpt+sft+dpo")
LORA_KEYS = ("r", "alpha", "dropout", "target_modules")  # ignored by method = "full"
# TRL's DPO loss names (DPOConfig.loss_type)
DPO_LOSSES = (
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
    "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
)  # fmt: skip


def _h(text: str, **kw) -> dict:
    return {"help": text, **kw}


@dataclass(frozen=True)
class FineTuneSpec:
    train: str | None = field(
        default=None, metadata=_h("SFT chat pairs (JSONL messages or prompt/completion)", path=True)
    )
    cpt_data: str | None = field(
        default=None, metadata=_h("raw text for the CPT stage (JSONL text or .txt)", path=True)
    )
    dpo_data: str | None = field(
        default=None,
        metadata=_h(
            'preference pairs for the dpo stage: JSONL {"prompt" | "messages", "chosen", "rejected"} (TRL\'s '
            "conversational form too); default: train, when dpo is the only stage",
            path=True,
        ),
    )
    init_adapter: str | None = field(
        default=None,
        metadata=_h('a LoRA adapter the first stage continues (e.g. an SFT adapter for stage = "dpo")', path=True),
    )
    valid: str | None = field(default=None, metadata=_h("validation set; default: a seeded split of train", path=True))
    valid_fraction: float = field(
        default=0.1, metadata=_h("share of train held out for validation (0.1-0.2); 0: no validation")
    )
    train_sample: int = field(
        default=64,
        metadata=_h(
            "training rows whose loss is measured at each evaluation exactly as the validation loss is "
            "(as many as validation rows, at most this; 0: none)"
        ),
    )
    eval: list[str] = field(
        default_factory=list, metadata=_h("eval sets never to train on (gate data is added)", path=True)
    )
    base: str | None = field(default=None, metadata=_h("base model; default [model].base"))
    method: str = field(
        default="lora",
        metadata=_h(
            "lora | qlora (4-bit NF4 base, double quantisation) | full (every weight; writes a full checkpoint, "
            "gradient checkpointing on)"
        ),
    )
    stage: str = field(
        default="sft",
        metadata=_h(
            "sft | cpt | cpt+sft | dpo | sft+dpo | cpt+sft+dpo: stages in order, each starting from the previous "
            "one's weights (DPO's reference policy is the stage before it, or the base)"
        ),
    )
    beta: float = field(default=0.1, metadata=_h("DPO: how far the policy may move from its reference (TRL's beta)"))
    loss_type: str = field(default="sigmoid", metadata=_h(f"DPO loss, TRL's names: {', '.join(DPO_LOSSES)}"))
    optimizer: str = field(
        default="adamw_torch", metadata=_h("the optimizer (transformers' `optim` names, e.g. adamw_torch, adafactor)")
    )
    r: int = field(default=16, metadata=_h("LoRA rank"))
    alpha: int = field(default=32, metadata=_h("LoRA alpha (scale = alpha / r)"))
    dropout: float = field(default=0.05, metadata=_h("LoRA dropout"))
    target_modules: list[str] | None = field(
        default=None, metadata=_h("default: attention projections; CPT adds gate_proj/up_proj/down_proj")
    )
    learning_rate: float = field(default=3e-4, metadata=_h("peak learning rate (cosine schedule)"))
    warmup_steps: int = field(default=5, metadata=_h("linear warm-up steps"))
    epochs: float | None = field(default=None, metadata=_h("epochs (used when max_steps is not set; default 1)"))
    max_steps: int | None = field(default=None, metadata=_h("optimizer steps; overrides epochs"))
    cpt_steps: int | None = field(default=None, metadata=_h("optimizer steps of the CPT stage; default max_steps"))
    dpo_steps: int | None = field(default=None, metadata=_h("optimizer steps of the DPO stage; default max_steps"))
    batch_size: int = field(default=8, metadata=_h("examples per device step"))
    grad_accum: int = field(default=1, metadata=_h("gradient accumulation steps"))
    max_length: int = field(default=512, metadata=_h("tokens per example (SFT) or per packed block (CPT)"))
    packing: bool = field(default=False, metadata=_h("pack SFT examples into max_length blocks (CPT always packs)"))
    seed: int = field(default=0, metadata=_h("seed for init, split and data order"))
    logging_steps: int = field(default=5, metadata=_h("log train loss every N steps"))
    eval_steps: int = field(default=10, metadata=_h("validation loss every N steps"))
    save_steps: int = field(default=20, metadata=_h("checkpoint every N steps (for --resume)"))
    curriculum: bool = field(default=False, metadata=_h("order easy to hard by tokens in prompt+answer"))
    task_prefixes: bool = field(
        default=False, metadata=_h('prefix each prompt with "[task] " from a row\'s task field')
    )
    report_to: str = field(
        default="none",
        metadata=_h(
            'experiment tracker TRL logs to: "none" | "tensorboard" (STAGE_DIR/tensorboard) | "wandb"; '
            "`harness gate --log-to` adds the release to the same run"
        ),
    )
    output: str | None = field(
        default=None, metadata=_h("output directory; default a new runs/train-TIMESTAMP", path=True)
    )

    def __post_init__(self) -> None:
        problems = []
        if self.method not in METHODS:
            problems.append(("method", f"must be one of {', '.join(METHODS)}"))
        if self.stage not in STAGES:
            problems.append(("stage", f"must be one of {', '.join(STAGES)}"))
        stages = self.stage.split("+")
        if "dpo" in stages and "sft" in stages and not self.dpo_data:
            problems.append(("dpo_data", "is required when dpo follows sft: preference pairs (train is the SFT data)"))
        if self.stage == "dpo" and not (self.dpo_data or self.train):
            problems.append(("dpo_data", "is required for the dpo stage: preference pairs (or give them as train)"))
        if self.method == "qlora" and "dpo" in stages:
            problems.append(("method", "qlora with dpo is not supported here: use lora or full"))
        if self.init_adapter and self.method == "full":
            problems.append(("init_adapter", 'continues a LoRA adapter: with method = "full" set base to the model'))
        if self.beta <= 0:
            problems.append(("beta", "must be positive (0.1 is usual)"))
        if self.loss_type not in DPO_LOSSES:
            problems.append(("loss_type", f"must be one of TRL's: {', '.join(DPO_LOSSES)}"))
        if "sft" in self.stage and not self.train:
            problems.append(("train", "is required for the sft stage: chat pairs to fine-tune on"))
        if "cpt" in self.stage and not (self.cpt_data or (self.stage == "cpt" and self.train)):
            problems.append(("cpt_data", "is required for the cpt stage: raw text (JSONL text rows or .txt)"))
        if not 0.0 <= self.valid_fraction < 0.5:
            problems.append(("valid_fraction", "must be in [0, 0.5): 0.1-0.2 is usual; 0 trains without validation"))
        for key in ("r", "alpha", "batch_size", "grad_accum", "logging_steps", "eval_steps", "save_steps"):
            if getattr(self, key) < 1:
                problems.append((key, "must be at least 1"))
        if self.train_sample < 0:
            problems.append(("train_sample", "must be >= 0 (0: no train-sample loss)"))
        for key in ("max_steps", "cpt_steps", "dpo_steps"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                problems.append((key, "must be at least 1"))
        if self.epochs is not None and self.epochs <= 0:
            problems.append(("epochs", "must be positive"))
        if self.max_length < 16:
            problems.append(("max_length", "must be at least 16 tokens"))
        if not 0 < self.learning_rate < 1:
            problems.append(("learning_rate", "must be between 0 and 1, e.g. 3e-4"))
        if not 0 <= self.dropout < 1:
            problems.append(("dropout", "must be in [0, 1)"))
        if self.report_to not in TRACKERS:
            problems.append(("report_to", f"must be one of {', '.join(TRACKERS)}"))
        if problems:
            raise ValueError(problems)

    def steps_for(self, stage: str) -> int | None:
        own = {"cpt": self.cpt_steps, "dpo": self.dpo_steps}.get(stage)
        return own or self.max_steps

    def data_for(self, stage: str) -> str | None:
        """The file a stage trains on."""
        if stage == "cpt":
            return self.cpt_data or self.train
        if stage == "dpo":
            return self.dpo_data or self.train
        return self.train

    def stages(self) -> list[str]:
        return self.stage.split("+")

    def modules_for(self, stage: str) -> list[str]:
        if self.target_modules:
            return list(self.target_modules)
        # domain vocabulary lives in the FFN: CPT adapts it too (and SFT on top keeps the same modules)
        return list(ATTENTION + FFN) if "cpt" in self.stage else list(ATTENTION)
