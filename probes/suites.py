"""Probe suites: JSONL items with an `id`, a `prompt` or `messages`, and a `check` spec.

HumanEval's problem format (`task_id`, `prompt`, `test`, `entry_point`) is read as is: the prompt is
asked as a chat turn and checked with `python_tests`. `.jsonl.gz` files are read too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.data import clip, first_duplicate, iter_jsonl, resolve_data_path
from harness.core.errors import HarnessError
from harness.core.hashing import sha256_file
from probes.checkers import SpecError, validate_spec

_HELP = (
    'each line: {"id": "...", "prompt": "..." (or "messages": [...]), "check": {"type": "contains", '
    '"value": "..."}}, or a HumanEval problem {"task_id", "prompt", "test", "entry_point"}'
)
HUMANEVAL_ASK = "Complete this Python function. Reply with the complete function in a Python code block.\n\n"


@dataclass(frozen=True)
class ProbeItem:
    id: str
    line: int
    messages: tuple[dict[str, str], ...]
    check: dict[str, Any] = field(compare=False)

    def preview(self, limit: int = 200) -> str:
        text = " | ".join(m["content"] for m in self.messages)
        return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    sha256: str
    items: tuple[ProbeItem, ...]
    needs_chat_template: bool = True

    def __len__(self) -> int:
        return len(self.items)


def _item(obj: Any, where: str, line: int, check_optional: bool = False) -> ProbeItem:
    if not isinstance(obj, dict):
        raise HarnessError("expected a JSON object", where=where, fix=_HELP)
    if {"task_id", "prompt", "test", "entry_point"} <= obj.keys():  # HumanEval
        check = {
            "type": "python_tests",
            "prompt": obj["prompt"],
            "tests": obj["test"],
            "entry_point": obj["entry_point"],
        }
        return ProbeItem(
            str(obj["task_id"]), line, ({"role": "user", "content": HUMANEVAL_ASK + obj["prompt"]},), check
        )
    if "check" not in obj and not check_optional:
        raise HarnessError('probe item has no "check"', where=where, fix=_HELP)
    try:
        check = validate_spec(obj.get("check", {"type": "none"}))
    except SpecError as e:
        raise HarnessError(f"bad check spec: {e}", where=where, fix=_HELP) from None
    if isinstance(obj.get("messages"), list) and obj["messages"]:
        msgs = obj["messages"]
    elif isinstance(obj.get("prompt"), str) and obj["prompt"].strip():
        msgs = [{"role": "user", "content": obj["prompt"]}]
    elif isinstance(obj.get("prompt"), list) and obj["prompt"]:
        msgs = obj["prompt"]
    else:
        raise HarnessError('probe item needs a non-empty "prompt" or "messages"', where=where, fix=_HELP)
    if not all(
        isinstance(m, dict) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str) for m in msgs
    ):
        raise HarnessError('messages must be objects with string "role" and "content"', where=where, fix=_HELP)
    if msgs[-1]["role"] == "assistant":
        raise HarnessError(
            "the last message is the assistant's: a probe asks, the model answers",
            where=where,
            fix="end the messages with the user's turn",
        )
    return ProbeItem(
        str(obj.get("id", f"line-{line}")),
        line,
        tuple({"role": m["role"], "content": m["content"]} for m in msgs),
        check,
    )


def load_suite(
    spec: str, base_dir: Path | None = None, *, key: str | None = None, check_optional: bool = False
) -> Suite:
    """Read a probe suite; with `check_optional` (prompts for a judge), items may omit `check`."""
    path = resolve_data_path(spec, base_dir)
    where = str(path) + (f" (config key {key})" if key else "")
    if not path.is_file():
        raise HarnessError(
            "probe suite not found",
            where=where,
            fix="check the path; relative paths are resolved from the release config's folder",
        )
    items = [_item(obj, f"{path}:{line_no}", line_no, check_optional) for line_no, obj in iter_jsonl(path, _HELP)]
    if not items:
        raise HarnessError("probe suite has no items", where=where, fix=_HELP)
    dup = first_duplicate([i.id for i in items])
    if dup is not None:
        raise HarnessError(f"duplicate id {clip(dup)!r}", where=where, fix='give every item a unique "id"')
    return Suite(path, spec if spec.startswith("builtin:") else path.name, sha256_file(path), tuple(items))
