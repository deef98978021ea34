"""The config reference, generated from the dataclasses that validate the config (field types, defaults, help).

`docs/config.md` is this module's output (`python -m harness.config_docs > docs/config.md`; a test fails when the
file is stale), and `harness gates` prints the same keys, so the reference and the code cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any

from fine_tune.spec import FineTuneSpec
from gates import gate_names, get_gate
from harness.config import DataSpec, ModelSpec, RunSpec
from harness.core.runtime.registry import backend_names, get_backend

REGENERATE = "python -m harness.config_docs > docs/config.md"
REQUIRED = "required"
UNSET = "unset"

# `required` is read by the config loader for every gate, outside the gate's own params
REQUIRED_KEY_HELP = "a required gate that does not pass blocks the release; false: reported, never blocks"

SECTIONS: tuple[tuple[str, type, str], ...] = (
    ("model", ModelSpec, "What is gated and against what, and where the models run."),
    ("run", RunSpec, "The run as a whole."),
    ("data", DataSpec, "Rules for training data (`harness train`, `harness gate`, `harness data audit --config`)."),
    ("fine_tune", FineTuneSpec, "What `harness train` runs (LoRA/QLoRA, CPT/SFT)."),
)


@dataclass(frozen=True)
class Key:
    """One TOML key of a config table, as its dataclass field declares it."""

    name: str
    type: str
    default: str
    help: str


def type_name(tp: Any, *, path: bool = False) -> str:
    """A field's type in TOML words: `str | None` -> "string", `list[str]` -> "list of strings"."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(type_name(a, path=path) for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (str,)
        return f"list of {type_name(inner, path=path)}s"
    names = {str: "path" if path else "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def toml_value(value: Any) -> str:
    """A default as it is written in TOML (`None`, no value in TOML, is "unset")."""
    if value is None:
        return UNSET
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list, tuple)):
        return json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)
    return repr(value)


def default_of(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return toml_value(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return toml_value(f.default_factory())
    return REQUIRED


def keys_of(cls: type) -> list[Key]:
    """Every field of a config dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    return [
        Key(
            f.name,
            type_name(hints[f.name], path=bool(f.metadata.get("path"))),
            default_of(f),
            f.metadata.get("help", ""),
        )
        for f in dataclasses.fields(cls)
        if not f.metadata.get("internal")
    ]


def gate_keys(name: str) -> list[Key]:
    """The keys of `[gates.NAME]`: the gate's params, then `required`, which every gate takes."""
    return [*keys_of(get_gate(name).params), Key("required", "boolean", "true", REQUIRED_KEY_HELP)]


def gate_summary(name: str) -> str:
    """The gate's docstring as one line, and the candidate forms it applies to when not every form."""
    gdef = get_gate(name)
    summary = " ".join(gdef.doc.split())
    if gdef.only_for is not None:
        summary += f" Applies to a candidate of form {' or '.join(gdef.only_for)} only (else `n/a`)."
    return summary


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default_cell(default: str) -> str:
    return f"*{default}*" if default in (REQUIRED, UNSET) else f"`{_cell(default)}`"


def keys_table(keys: list[Key]) -> str:
    """A Markdown table of keys: key, type, default, help."""
    rows = ["| key | type | default | help |", "|---|---|---|---|"]
    rows += [f"| `{k.name}` | {k.type} | {_default_cell(k.default)} | {_cell(k.help)} |" for k in keys]
    return "\n".join(rows) + "\n"


def gate_markdown(name: str) -> str:
    return f"### `[gates.{name}]`\n\n{gate_summary(name)}\n\n{keys_table(gate_keys(name))}"


def gates_markdown(names: list[str] | None = None) -> str:
    """The reference of the named gates (default: every registered gate), one section each."""
    return "\n".join(gate_markdown(n) for n in names or gate_names())


def backends_markdown() -> str:
    """Each backend's own [model] keys, one table per backend that has some."""
    out = ""
    for name in backend_names():
        be = get_backend(name)
        out += f'\n### `backend = "{name}"`\n\n{be.help}.' + (
            f" Its keys, in `[model]`:\n\n{keys_table(keys_of(be.Options))}" if be.Options else " No keys of its own.\n"
        )
    return out


def config_markdown() -> str:
    """The whole of `docs/config.md`."""
    head = (
        "# Config reference\n\n"
        f"<!-- generated by `{REGENERATE}` from the config dataclasses; do not edit by hand -->\n\n"
        "Every key of a release config, with its type, default and help, as the code that validates the config "
        "declares them. An unknown key is an error. A `path` is a file or folder, resolved from the config file's "
        "folder (a data key also takes a shipped `builtin:NAME` set); *unset*: the key has no value unless given; "
        "*required*: it must be given. `harness gates [NAME]` prints the gate tables below.\n\n"
    )
    sections = "\n".join(
        f"## `[{name}]`\n\n{intro}\n\n{keys_table(keys_of(cls))}" + (backends_markdown() if name == "model" else "")
        for name, cls, intro in SECTIONS
    )
    gates = (
        "## `[gates.NAME]`\n\n"
        "A `[gates.NAME]` table enables the gate; its keys configure it. Gates: "
        + ", ".join(f"`{n}`" for n in gate_names())
        + ".\n\n"
    )
    return head + sections + "\n" + gates + gates_markdown()


def main() -> None:
    sys.stdout.write(config_markdown())


if __name__ == "__main__":
    main()
