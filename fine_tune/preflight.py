"""Loss-mask preflight for SFT: fail loudly before training on examples the trainer would mistrain.

For every example, rendered with the tokenizer's own chat template exactly as TRL renders
prompt/completion pairs: the rendered prompt (with the generation prompt) must be a prefix of the
rendered prompt+answer; at least one answer token must survive truncation at `max_length`; and the
supervised part must end with the end-of-turn token, or the model never learns to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.core.chat import end_of_turn_ids
from harness.core.data import Record
from harness.core.errors import HarnessError


@dataclass(frozen=True)
class PreflightIssue:
    line: int
    id: str
    problem: str


def check_example(tokenizer: Any, messages: list[dict[str, str]], max_length: int, eot: set[int]) -> str | None:
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        return "the rendered prompt is not a prefix of the rendered prompt+answer (the chat template is broken)"
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"][:max_length], enc["offset_mapping"][:max_length]
    supervised = [t for t, (start, _) in zip(ids, offsets, strict=True) if start >= len(prompt)]
    if not supervised:
        truncated = len(enc["input_ids"]) > max_length
        return "no supervised tokens" + (f" (the prompt alone fills max_length={max_length})" if truncated else "")
    while supervised and not tokenizer.decode([supervised[-1]]).strip():
        supervised.pop()  # trailing newlines after the end-of-turn token
    if not supervised or supervised[-1] not in eot:
        if len(enc["input_ids"]) > max_length:
            return f"the answer is cut by max_length={max_length} before its end-of-turn token"
        last = tokenizer.decode(supervised[-1:]) if supervised else ""
        names = ", ".join(sorted(tokenizer.convert_ids_to_tokens(sorted(eot))))
        return f"the supervised part does not end with an end-of-turn token ({names}); it ends with {last!r}"
    return None


def preflight_sft(rows: list[tuple[Record, list[dict[str, str]]]], tokenizer: Any, max_length: int, where: str) -> None:
    """Raise `HarnessError` naming the offending lines (up to 5 shown) if any example would mistrain."""
    if not getattr(tokenizer, "chat_template", None):
        raise HarnessError(
            "the tokenizer has no chat template; SFT on chat pairs needs one",
            where=where,
            fix="use an instruct/chat tokenizer or set tokenizer.chat_template",
        )
    eot = end_of_turn_ids(tokenizer)
    issues = []
    for rec, msgs in rows:
        problem = check_example(tokenizer, msgs, max_length, eot)
        if problem:
            issues.append(PreflightIssue(rec.line, rec.id, problem))
    if issues:
        shown = "\n".join(f"    line {i.line} ({i.id}): {i.problem}" for i in issues[:5])
        more = f"\n    … and {len(issues) - 5} more" if len(issues) > 5 else ""
        raise HarnessError(
            f"loss-mask preflight failed on {len(issues)} of {len(rows)} examples:\n{shown}{more}",
            where=where,
            fix="fix the chat template or the rows named; raise max_length if answers are cut",
        )


def preflight_dpo(pairs: Any, tokenizer: Any, max_length: int, where: str) -> None:
    """Every preference pair must leave room for its answers: the rendered prompt (with the generation prompt) plus
    at least one answer token within `max_length`, or DPO trains on nothing for that row. Names file:line."""
    if not getattr(tokenizer, "chat_template", None):
        raise HarnessError(
            "the tokenizer has no chat template; DPO on chat pairs needs one",
            where=where,
            fix="use an instruct/chat tokenizer or set tokenizer.chat_template",
        )
    issues = []
    for p in pairs:
        n = len(
            tokenizer.apply_chat_template(list(p.prompt), tokenize=True, add_generation_prompt=True, return_dict=False)
        )
        if n >= max_length:
            issues.append(
                PreflightIssue(
                    p.line, p.id, f"the prompt alone is {n} tokens, max_length={max_length} leaves no answer"
                )
            )
    if issues:
        shown = "\n".join(f"    {where}:{i.line} ({i.id}): {i.problem}" for i in issues[:5])
        more = f"\n    … and {len(issues) - 5} more" if len(issues) > 5 else ""
        raise HarnessError(
            f"DPO preflight failed on {len(issues)} of {len(pairs)} pairs:\n{shown}{more}",
            where=f"{where}:{issues[0].line}",
            fix="shorten the prompts named, or raise [fine_tune] max_length",
        )
