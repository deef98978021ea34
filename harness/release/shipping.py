"""Measurements of what ships: the merge, the GGUF exports and the chat template across all of them.

Artifacts live in the user cache under the adapter's and base's hashes (`exports/<adapter>-<base>/`), so a
re-run reuses the merge and the GGUFs; each measurement's numbers are cached like every other one. Each
`measure_*` is registered here as a measurement kind (`merge_parity`, `gguf_parity`, `template_drift`, `rollback`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.chat import template_eot_id
from harness.core.console import status
from harness.core.fresh import run_module
from harness.core.hashing import sha256_bytes, sha256_file
from harness.core.kinds import MeasureCall, as_is, kind
from harness.core.models import load_tokenizer, tokenizer_dir
from harness.core.runtime import GenParams
from harness.core.training_manifest import find_manifest
from harness.release.artifacts import ensure_gguf, ensure_merged, export_dir
from harness.release.bundle import make_bundle, verify_in_fresh_process
from probes.parity import compare, reference, render, tokenizer_parity
from probes.sampling import load_prompts

# the measuring code of every kind here (part of their cache keys): the export, these checks, the parity compare
SHIP_CODE = ("harness.release.export", "harness.release.shipping", "probes.parity", "harness.core.runtime.hf")


def _conversations(call: MeasureCall) -> list[list[dict[str, str]]]:
    """The first `max_prompts` conversations of the request's prompt suite."""
    return [list(i.messages) for i in call.data.items[: call.options["max_prompts"]]]


@kind("merge_parity", load=as_is, dump=as_is, load_data=load_prompts, code=SHIP_CODE)
def measure_merge(call: MeasureCall) -> dict[str, Any]:
    """Unmerged candidate vs its merge (full precision), on the prompts."""

    o, env = call.options, call.env
    convs = _conversations(call)
    unmerged, merged = call.runtime("candidate", dtype="float32", local=True), call.runtime("merged")
    merged_dir = ensure_merged(env.base, env.adapter)
    eos = [template_eot_id(unmerged.tok)]
    with status("Comparing the merged model with the unmerged adapter"):
        ref = reference(unmerged, convs, max_new_tokens=o["max_new_tokens"], eos=eos)
        parity = compare(ref, merged, max_new_tokens=o["max_new_tokens"], eos=eos)
    info = json.loads((merged_dir / "harness_merge.json").read_text())
    return {
        "merged_dir": str(merged_dir),
        "dtype": str(next(merged.model.parameters()).dtype).replace("torch.", ""),
        "merge": info,
        "weights_sha256": {p.name: sha256_file(p) for p in sorted(merged_dir.glob("*.safetensors"))},
        "parity": parity.to_dict(),
    }


def _gguf_kept(v: dict[str, Any]) -> bool:
    """A llama.cpp run that crashed says something about this machine, not the export: measure it again."""
    return not any("error" in t.get("llama_cpp", {}) for t in v["types"].values())


@kind("gguf_parity", load=as_is, dump=as_is, load_data=load_prompts, code=SHIP_CODE, keep=_gguf_kept)
def measure_gguf(call: MeasureCall) -> dict[str, Any]:
    """Each GGUF type read back by transformers vs the merged model (whose answers and logits are computed once);
    tokenizer parity; llama.cpp's own greedy answers where it is installed."""

    o, env = call.options, call.env
    convs = _conversations(call)
    merged = call.runtime("merged")
    eos = [template_eot_id(merged.tok)]
    with status("Running the merged model (the GGUFs' reference)"):
        ref = reference(merged, convs, max_new_tokens=o["max_new_tokens"], eos=eos)
    out = {}
    for qtype in o["types"]:
        path = ensure_gguf(env.base, env.adapter, qtype)
        gguf = call.runtime(f"gguf:{qtype}")
        with status(f"Comparing the {qtype} GGUF with the merged model"):
            parity = compare(ref, gguf, max_new_tokens=o["max_new_tokens"], eos=eos)
            toks = tokenizer_parity(merged.tok, gguf.tok, convs)
        out[qtype] = {
            "path": str(path),
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "parity": parity.to_dict(),
            "tokenizer": toks,
        }
        if o.get("llama_cpp") and llama_cpp_available():
            with status(f"Running the {qtype} GGUF in llama.cpp"):
                out[qtype]["llama_cpp"] = llama_cpp_greedy(path, ref, merged.tok, convs, o["max_new_tokens"])
    merged_dir = ensure_merged(env.base, env.adapter)
    return {"merged_dir": str(merged_dir), "types": out, "llama_cpp_installed": llama_cpp_available()}


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def llama_cpp_greedy(path: Path, ref: Any, tok: Any, convs: list[list[dict[str, str]]], max_new_tokens: int) -> dict:
    """Greedy completions of the GGUF run by llama.cpp itself vs the merged model's (`ref`, a
    probes.parity.Reference ended at the end-of-turn token), from the same token ids. llama.cpp runs in its own
    process: a crash there is reported, it cannot take the harness down."""

    eot = template_eot_id(tok)
    prompts = ref.prompts
    wants = [[t for t in a.token_ids if t != eot] for a in ref.answers]
    run = run_module(
        "harness.release.llama_cpp_run",
        str(path),
        payload={"prompts": prompts, "stop": [eot], "max_new_tokens": max_new_tokens},
    )
    if not run.ok:
        return {"error": f"llama.cpp exited with {run.returncode}: {run.stderr.strip()[-300:]}", "greedy_equal": 0.0}
    got = run.result
    equal, differing = 0, []
    for conv, want, have in zip(convs, wants, got["outputs"], strict=True):
        if want == have:
            equal += 1
        elif len(differing) < 3:
            differing.append(
                {"prompt": conv[-1]["content"][:200], "reference": tok.decode(want), "other": tok.decode(have)}
            )
    return {"version": got["version"], "greedy_equal": equal / max(len(convs), 1), "differing": differing}


def gguf_metadata(path: Path) -> dict[str, Any]:
    import gguf

    r = gguf.GGUFReader(str(path))

    def val(key: str) -> Any:
        f = r.fields.get(key)
        return f.contents() if f is not None else None

    return {"chat_template": val("tokenizer.chat_template"), "eos_token_id": val("tokenizer.ggml.eos_token_id")}


@kind("template_drift", load=as_is, dump=as_is, load_data=load_prompts, code=SHIP_CODE)
def measure_template(call: MeasureCall) -> dict[str, Any]:
    """The chat template at training time, in the adapter's tokenizer, the merge and the GGUF; rendered ids;
    the end-of-turn token as EOS; whether greedy generation stops."""

    o, env = call.options, call.env
    convs = _conversations(call)

    def h(t: str | None) -> str | None:
        return sha256_bytes(t.encode()) if t else None

    merged_dir = ensure_merged(env.base, env.adapter)
    gpath = ensure_gguf(env.base, env.adapter, o["gguf_type"])
    m = find_manifest(env.adapter.dir if env.adapter is not None else env.base.dir)
    training = m.chat_template_sha256 if m else None
    atok = load_tokenizer(tokenizer_dir(env.base, env.adapter))
    merged = call.runtime("merged")
    mtok, gtok = merged.tok, call.runtime(f"gguf:{o['gguf_type']}").tok
    meta = gguf_metadata(gpath)
    hashes = {
        "training": training,
        "adapter": h(atok.chat_template),
        "merged": h(mtok.chat_template),
        "gguf": h(meta["chat_template"]),
    }
    ids_differ = [
        conv[-1]["content"][:120]
        for conv in convs
        if len({tuple(t(render(t, conv), add_special_tokens=False)["input_ids"]) for t in (atok, mtok, gtok)}) > 1
    ]
    eot = template_eot_id(atok)
    gen_cfg = json.loads((merged_dir / "generation_config.json").read_text())
    gen_eos = gen_cfg.get("eos_token_id")
    gen_eos = gen_eos if isinstance(gen_eos, list) else [gen_eos]
    # the merged model's own generation config decides when to stop
    params = GenParams(max_new_tokens=o["max_new_tokens"], eos="config")
    answers = [merged.generate_one(conv, params) for conv in convs]
    stopped = sum(bool(a.token_ids) and a.token_ids[-1] in gen_eos for a in answers)
    return {
        "hashes": hashes,
        "rendered_differ": ids_differ,
        "eot_token": atok.convert_ids_to_tokens(eot),
        "eot_id": eot,
        "generation_config_eos": gen_eos,
        "gguf_eos": meta["eos_token_id"],
        "stopped": stopped,
        "prompts": len(convs),
        "gguf": str(gpath),
    }


# the bundle on disk is what is checked: never cached
@kind("rollback", load=as_is, dump=as_is, load_data=load_prompts, code=SHIP_CODE, cached=False)
def measure_rollback(call: MeasureCall) -> dict[str, Any]:
    """Bundle what ships (unless a bundle is named) and reload it in a fresh process: same files, same outputs."""

    o, env = call.options, call.env
    bundle = Path(o["bundle"]) if o["bundle"] else export_dir(env.base, env.adapter) / "bundle"
    if not bundle.exists():  # bundle what was gated, then check it like any other bundle
        make_bundle(
            env.base,
            env.adapter,
            bundle,
            _conversations(call),
            gguf_types=tuple(o["gguf_types"]),
            max_new_tokens=o["max_new_tokens"],
        )
    return verify_in_fresh_process(bundle)
