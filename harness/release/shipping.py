"""Measurements of what ships: the merge, the GGUF exports and the chat template across all of them.

Artifacts live in the user cache under the adapter's and base's hashes (`exports/<adapter>-<base>/`), so a
re-run reuses the merge and the GGUFs; each measurement's numbers are cached like every other one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.cache import MeasurementCache, measurement_key
from harness.hashing import sha256_file, sha256_json, source_sha256
from harness.models import AdapterInfo, BaseModel, fingerprint
from harness.release.artifacts import ensure_gguf, ensure_merged, export_dir, load_conversations, load_merged

CODE = ("harness.release.export", "harness.release.shipping", "probes.parity", "harness.runtime.hf")


def _cached(
    cache: MeasurementCache,
    kind: str,
    base: BaseModel,
    adapter: AdapterInfo,
    data_sha: str,
    opts: dict,
    fn,
    keep=lambda value: True,  # a result that depends on the environment (a crashed llama.cpp) is not kept
):
    key = measurement_key(
        kind,
        model=fingerprint(base, adapter).key,
        data=data_sha,
        options=opts,
        code=sha256_json([source_sha256(m) for m in CODE]),
    )
    hit = cache.get(key)
    if hit is not None:
        return hit
    value = fn()
    if keep(value):
        cache.put(key, value)
    return value


def _unmerged(base: BaseModel, adapter: AdapterInfo) -> tuple[Any, Any]:
    from harness.models import attach_adapter, load_base_model, load_tokenizer, tokenizer_dir

    model = attach_adapter(load_base_model(base, dtype="float32"), adapter)
    return model, load_tokenizer(tokenizer_dir(base, adapter))


def measure_merge(req: Any, base_dir: Path | None, base: BaseModel, adapter: AdapterInfo, cache: MeasurementCache):
    """Unmerged candidate vs its merge (full precision), on the prompts."""
    from harness.console import status
    from harness.release.export import template_eot_id
    from probes.parity import compare

    o = req.opts
    convs, sha = load_conversations(req.data, base_dir, o["max_prompts"])

    def run() -> dict[str, Any]:
        merged_dir = ensure_merged(base, adapter)
        with status("Comparing the merged model with the unmerged adapter"):
            ref, tok = _unmerged(base, adapter)
            merged, _ = load_merged(merged_dir)
            parity = compare(ref, tok, merged, convs, max_new_tokens=o["max_new_tokens"], eos=[template_eot_id(tok)])
        info = json.loads((merged_dir / "harness_merge.json").read_text())
        return {
            "merged_dir": str(merged_dir),
            "dtype": str(next(merged.parameters()).dtype).replace("torch.", ""),
            "merge": info,
            "weights_sha256": {p.name: sha256_file(p) for p in sorted(merged_dir.glob("*.safetensors"))},
            "parity": parity.to_dict(),
        }

    return _cached(cache, "merge_parity", base, adapter, sha, dict(o), run)


def measure_gguf(req: Any, base_dir: Path | None, base: BaseModel, adapter: AdapterInfo, cache: MeasurementCache):
    """Each GGUF type read back by transformers vs the merged model; tokenizer parity."""
    from harness.console import status
    from harness.release.export import load_gguf, template_eot_id
    from probes.parity import compare, tokenizer_parity

    o = req.opts
    convs, sha = load_conversations(req.data, base_dir, o["max_prompts"])

    def run() -> dict[str, Any]:
        merged_dir = ensure_merged(base, adapter)
        ref, tok = load_merged(merged_dir)
        out = {}
        for qtype in o["types"]:
            path = ensure_gguf(base, adapter, qtype)
            with status(f"Comparing the {qtype} GGUF with the merged model"):
                model, gtok = load_gguf(path)
                parity = compare(ref, tok, model, convs, max_new_tokens=o["max_new_tokens"], eos=[template_eot_id(tok)])
                toks = tokenizer_parity(tok, gtok, convs)
            out[qtype] = {
                "path": str(path),
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
                "parity": parity.to_dict(),
                "tokenizer": toks,
            }
            if o.get("llama_cpp") and llama_cpp_available():
                with status(f"Running the {qtype} GGUF in llama.cpp"):
                    out[qtype]["llama_cpp"] = llama_cpp_greedy(path, ref, tok, convs, o["max_new_tokens"])
        return {"merged_dir": str(merged_dir), "types": out, "llama_cpp_installed": llama_cpp_available()}

    return _cached(
        cache,
        "gguf_parity",
        base,
        adapter,
        sha,
        {**o, "llama_cpp_installed": llama_cpp_available()},
        run,
        keep=lambda v: not any("error" in t.get("llama_cpp", {}) for t in v["types"].values()),
    )


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def llama_cpp_greedy(
    path: Path, ref: Any, tok: Any, convs: list[list[dict[str, str]]], max_new_tokens: int
) -> dict[str, Any]:
    """Greedy completions of the GGUF run by llama.cpp itself vs the merged model's, from the same token ids.
    llama.cpp runs in its own process: a crash there is reported, it cannot take the harness down."""
    from harness.fresh import run_module
    from harness.release.export import template_eot_id
    from harness.runtime import GenParams, HFRuntime

    eot = template_eot_id(tok)
    rt = HFRuntime(ref, tok)
    prompts = [rt.encode(conv) for conv in convs]
    params = GenParams(max_new_tokens=max_new_tokens, eos=(eot,))
    wants = [[t for t in rt.generate_one(ids, params).token_ids if t != eot] for ids in prompts]
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


def measure_template(req: Any, base_dir: Path | None, base: BaseModel, adapter: AdapterInfo, cache: MeasurementCache):
    """The chat template at training time, in the adapter's tokenizer, the merge and the GGUF; rendered ids;
    the end-of-turn token as EOS; whether greedy generation stops."""
    from harness.hashing import sha256_bytes
    from harness.models import load_tokenizer, tokenizer_dir
    from harness.release.export import load_gguf, template_eot_id
    from harness.runtime import GenParams, HFRuntime
    from harness.training_manifest import find_manifest
    from probes.parity import render

    o = req.opts
    convs, sha = load_conversations(req.data, base_dir, o["max_prompts"])

    def h(t: str | None) -> str | None:
        return sha256_bytes(t.encode()) if t else None

    def run() -> dict[str, Any]:
        merged_dir = ensure_merged(base, adapter)
        gpath = ensure_gguf(base, adapter, o["gguf_type"])
        m = find_manifest(adapter.dir)
        training = m.chat_template_sha256 if m else None
        atok = load_tokenizer(tokenizer_dir(base, adapter))
        mtok = load_tokenizer(merged_dir)
        meta = gguf_metadata(gpath)
        _, gtok = load_gguf(gpath)
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
        merged, _ = load_merged(merged_dir)
        rt = HFRuntime(merged, mtok)
        # the merged model's own generation config decides when to stop
        params = GenParams(max_new_tokens=o["max_new_tokens"], eos="config")
        answers = [rt.generate_one(conv, params) for conv in convs]
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

    return _cached(cache, "template_drift", base, adapter, sha, dict(o), run)


def measure_rollback(req: Any, base_dir: Path | None, base: BaseModel, adapter: AdapterInfo, cache: MeasurementCache):
    """Bundle what ships (unless a bundle is named) and reload it in a fresh process: same files, same outputs."""
    from harness.release.bundle import make_bundle, verify_in_fresh_process

    o = req.opts
    bundle = Path(o["bundle"]) if o["bundle"] else export_dir(base, adapter) / "bundle"
    if not bundle.exists():  # bundle what was gated, then check it like any other bundle
        convs, _ = load_conversations(req.data, base_dir, o["max_prompts"])
        make_bundle(base, adapter, bundle, convs, gguf_types=tuple(o["gguf_types"]), max_new_tokens=o["max_new_tokens"])
    return verify_in_fresh_process(bundle)
