"""Preference pairs: a prompt, the answer preferred (`chosen`) and the one not (`rejected`), as DPO trains on them.

A JSONL file, one pair a line, in any of the forms TRL's preference datasets take:

- `{"prompt": "..." | [messages], "chosen": ..., "rejected": ...}`: an explicit prompt (a string is one user turn);
- `{"messages": [messages], "chosen": ..., "rejected": ...}`: the prompt as a conversation;
- `{"chosen": [conversation], "rejected": [conversation]}`: TRL's conversational implicit prompt: the messages the two
  conversations share are the prompt, and the last message of each, an assistant turn, is its answer.

With an explicit prompt an answer is a string or TRL's conversational completion, a list holding one assistant
message. The prompt must end with a user turn (the answers answer it), and the two answers must differ. Every problem
names the file and line and says what a valid row looks like, as `harness.core.data` does for other data files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.core.data import BUILTIN_PREFIX, clip, first_duplicate, iter_jsonl, resolve_data_path
from harness.core.errors import HarnessError
from harness.core.hashing import sha256_file

_CONTENT_KEYS = ("id", "prompt", "messages", "chosen", "rejected")
PAIR_HELP = (
    'each line must be one JSON object with "prompt" (a string, or a list of {"role", "content"} ending with a user '
    'turn), "chosen" and "rejected" (the preferred and the dispreferred answer: strings), e.g. {"prompt": "...", '
    '"chosen": "...", "rejected": "..."}; or "chosen" and "rejected" as whole conversations that differ only in '
    "their last, assistant message (TRL's implicit prompt)"
)


@dataclass(frozen=True)
class PreferencePair:
    """One preference pair: the conversation before the answer, and the two answers to it."""

    id: str
    line: int
    prompt: tuple[dict[str, str], ...]  # system/user/assistant turns, ending with a user turn
    chosen: str  # the preferred assistant answer
    rejected: str  # the dispreferred assistant answer
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # the row's other fields (category, ...)

    def preview(self, limit: int = 200) -> str:
        """The prompt's turns joined, cut to `limit` characters."""
        body = " | ".join(m["content"] for m in self.prompt)
        return body if len(body) <= limit else body[: limit - 1] + "…"


@dataclass(frozen=True)
class PairSet:
    """A file of preference pairs, as a measurement kind's `load_data` gives it (sized and hashed as a `Dataset`)."""

    path: Path
    name: str
    sha256: str
    pairs: tuple[PreferencePair, ...]

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def needs_chat_template(self) -> bool:
        """Always: every prompt is a conversation, rendered with the chat template."""
        return True


def _turns(value: Any, where: str, key: str) -> list[dict[str, str]]:
    """A list of {"role", "content"} messages (strings), as written."""
    if not isinstance(value, list) or not value:
        raise HarnessError(f'"{key}" must be a non-empty list of messages', where=where, fix=PAIR_HELP)
    out = []
    for i, m in enumerate(value):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise HarnessError(
                f'"{key}"[{i}] must be an object with string "role" and "content"', where=where, fix=PAIR_HELP
            )
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _prompt(value: Any, where: str, key: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise HarnessError(f'"{key}" is empty', where=where, fix=PAIR_HELP)
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise HarnessError(
            f'"{key}" must be a string or a list of messages, got {type(value).__name__}', where=where, fix=PAIR_HELP
        )
    return _turns(value, where, key)


def _answer(value: Any, where: str, key: str) -> str:
    """An answer given with an explicit prompt: a string, or a list of exactly one assistant message."""
    if isinstance(value, list):
        msgs = _turns(value, where, key)
        if len(msgs) != 1 or msgs[0]["role"] != "assistant":
            roles = ", ".join(m["role"] for m in msgs)
            raise HarnessError(
                f'"{key}" must be the answer alone: one assistant message, got {len(msgs)} ({clip(roles)})',
                where=where,
                fix=f'give "{key}" as a string or [{{"role": "assistant", "content": "..."}}]; the conversation '
                'before the answer belongs in "prompt"',
            )
        value = msgs[0]["content"]
    if not isinstance(value, str):
        raise HarnessError(f'"{key}" must be a string, got {type(value).__name__}', where=where, fix=PAIR_HELP)
    if not value.strip():
        raise HarnessError(f'"{key}" is empty: there is no answer to score', where=where, fix=PAIR_HELP)
    return value


def _implicit(chosen: Any, rejected: Any, where: str) -> tuple[list[dict[str, str]], str, str]:
    """TRL's implicit prompt: the shared leading messages, and the last (assistant) message of each conversation."""
    c, r = _turns(chosen, where, "chosen"), _turns(rejected, where, "rejected")
    k = 0
    while k < min(len(c), len(r)) and c[k] == r[k]:
        k += 1
    if k == len(c) == len(r):
        raise HarnessError(
            '"chosen" and "rejected" are the same conversation: nothing to prefer',
            where=where,
            fix="make the last assistant message of each the two different answers, or drop the row",
        )
    for key, rest in (("chosen", c[k:]), ("rejected", r[k:])):
        if len(rest) != 1 or rest[0]["role"] != "assistant":
            raise HarnessError(
                '"chosen" and "rejected" must be one conversation that differs only in its last message, an '
                f'assistant answer; "{key}" has {len(rest)} message(s) after the {k} they share'
                + (f" (the last a {rest[-1]['role']!r} turn)" if rest and rest[-1]["role"] != "assistant" else ""),
                where=where,
                fix='without "prompt", chosen and rejected must be the same conversation up to their last message, '
                'an assistant answer: give the shared turns as "prompt" and each answer alone',
            )
    return c[:k], c[k]["content"], r[k]["content"]


def parse_pair(obj: Any, where: str, line: int) -> PreferencePair:
    """One JSONL row as a pair; a `HarnessError` at `where` (FILE:LINE) naming what is wrong and the fix."""
    if not isinstance(obj, dict):
        raise HarnessError(f"expected a JSON object, got {type(obj).__name__}", where=where, fix=PAIR_HELP)
    missing = [k for k in ("chosen", "rejected") if k not in obj]
    if missing:
        has = clip(", ".join(obj)) or "none"
        raise HarnessError(
            f"row has no {' and no '.join(repr(k) for k in missing)} field (it has: {has})", where=where, fix=PAIR_HELP
        )
    if "prompt" in obj and "messages" in obj:
        raise HarnessError(
            'row has both "prompt" and "messages"', where=where, fix='give the prompt once, as "prompt" or "messages"'
        )
    key = "prompt" if "prompt" in obj else "messages" if "messages" in obj else None
    if key is None:
        if not (isinstance(obj["chosen"], list) and isinstance(obj["rejected"], list)):
            raise HarnessError(
                'row has no "prompt" field (nor "messages")',
                where=where,
                fix='add "prompt": the request both answers answer; only whole conversations as "chosen" and '
                '"rejected" carry their prompt in them (TRL\'s implicit prompt)',
            )
        prompt, chosen, rejected = _implicit(obj["chosen"], obj["rejected"], where)
    else:
        prompt = _prompt(obj[key], where, key)
        chosen, rejected = _answer(obj["chosen"], where, "chosen"), _answer(obj["rejected"], where, "rejected")
    if not prompt or prompt[-1]["role"] != "user":
        last = f"a {prompt[-1]['role']!r} turn" if prompt else "nothing"
        raise HarnessError(
            f"the prompt must end with a user turn (the request the answers answer); it ends with {last}",
            where=where,
            fix="end the prompt with the user's request; the assistant answers are chosen and rejected",
        )
    if chosen.strip() == rejected.strip():
        raise HarnessError(
            '"chosen" and "rejected" are the same answer: nothing to prefer',
            where=where,
            fix="give two different answers, or drop the row",
        )
    meta = {k: v for k, v in obj.items() if k not in _CONTENT_KEYS}
    return PreferencePair(str(obj.get("id", f"line-{line}")), line, tuple(prompt), chosen, rejected, meta)


@lru_cache(maxsize=16)
def _load(path: Path, sha: str) -> tuple[PreferencePair, ...]:
    return tuple(parse_pair(obj, f"{path}:{line_no}", line_no) for line_no, obj in iter_jsonl(path, PAIR_HELP))


def load_pairs(spec: str | Path, base_dir: Path | None = None, *, key: str | None = None) -> PairSet:
    """Load and validate a JSONL file of preference pairs (`builtin:NAME` too); raise `HarnessError` naming the file
    (and the config key `key`, e.g. "[gates.preference] data") or the line, and the fix, on any problem."""
    spec = str(spec)
    path = resolve_data_path(spec, base_dir)
    where = f"{path}" + (f" (config key {key})" if key else "")
    if not path.exists():
        raise HarnessError(
            "data file not found",
            where=where,
            fix="check the path; relative paths are resolved from the release config's folder",
        )
    if path.is_dir():
        raise HarnessError("expected a data file, found a directory", where=where, fix="name a .jsonl file")
    if not path.name.endswith((".jsonl", ".jsonl.gz")):
        raise HarnessError(
            f"unsupported file type {path.suffix!r} for preference pairs",
            where=where,
            fix="use JSONL: one JSON object a line, " + PAIR_HELP.removeprefix("each line must be one JSON object "),
        )
    sha = sha256_file(path)
    pairs = _load(path.resolve(), sha)
    if not pairs:
        raise HarnessError("data file has no preference pairs", where=where, fix="add at least one row; " + PAIR_HELP)
    dup = first_duplicate([p.id for p in pairs])
    if dup is not None:
        line = next(p.line for p in pairs if p.id == dup)
        raise HarnessError(f"duplicate id {clip(dup)!r}", where=f"{path}:{line}", fix='give every row a unique "id"')
    name = spec if spec.startswith(BUILTIN_PREFIX) else path.name
    return PairSet(path=path, name=name, sha256=sha, pairs=pairs)
