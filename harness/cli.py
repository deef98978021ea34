"""The `harness` command line. Exit codes: 0 pass, 1 blocked by a gate, 2 bad input, 3 internal error."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from fine_tune.audit import audit, audit_json, dedup, render_audit
from fine_tune.licenses import LicenseTally, refusal_message
from fine_tune.runner import train_from_config
from harness.config import load_config
from harness.core import registry
from harness.core.console import console
from harness.core.data import clip
from harness.core.errors import EXIT_BAD_INPUT, EXIT_BLOCKED, EXIT_INTERNAL, EXIT_PASS, HarnessError
from harness.core.files import atomic_write_text
from harness.core.forms import resolve_form
from harness.core.models import check_adapter, resolve_base
from harness.core.paths import new_run_dir
from harness.core.tracking import TRACKERS
from harness.demo import run_demo
from harness.release import vllm_server
from harness.release.artifacts import load_conversations
from harness.release.bundle import make_bundle
from harness.release.export import export_gguf, merge
from harness.release.serve import serve
from harness.sweep import sweep

if TYPE_CHECKING:
    from reports import Report


def _gate(args: argparse.Namespace) -> int:
    from harness.pipeline import run
    from reports.console import print_summary

    result = run(args.config, args.out, overwrite=args.overwrite, log_to=args.log_to)
    print_summary(result.report, result.files)
    if result.tracked:
        t = result.tracked
        run_of = "the adapter's training run" if t.same_run else "a new run"
        console.print(f"logged {t.scalars} metrics to {t.tracker} ({run_of}, step {t.step}): {t.where}")
    return EXIT_PASS if result.passed else EXIT_BLOCKED


def _plan(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.pipeline import plan_power, power_warnings
    from reports.power import HEADER, power_rows

    console = Console(highlight=False, width=160)  # the plan is this command's output: stdout
    pl, table = plan_power(args.config)
    console.print(f"[bold]candidate[/]: {pl.candidate.describe()}", soft_wrap=True)
    console.print(f"[bold]reference[/]: {pl.reference.describe()}", soft_wrap=True)
    for name, reqs in pl.requests.items():
        looks = pl.looks.get(name)
        data = ", ".join(dict.fromkeys(f"{r.data} ({pl.sizes[r.data]})" for r in reqs if r.data in pl.sizes))
        seq = f"; looks at {', '.join(map(str, looks[0]))} items" if looks and len(looks[0]) > 1 else ""
        console.print(f"[bold]{name}[/]: {data or 'no model data'}{seq}", soft_wrap=True)
    t = Table(title="How much each gate can resolve (before measuring)")
    for h in HEADER:
        t.add_column(h)
    for row in power_rows(table):
        t.add_row(*(c.replace("`", "").replace("**", "") for c in row))
    console.print(t)
    for w in power_warnings(table, pl.reference_label):
        console.print(f"[yellow]warning[/]: {w}", soft_wrap=True)
    return EXIT_PASS


def _gates(args: argparse.Namespace) -> int:
    import difflib

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from gates import gate_names
    from harness.config_docs import gate_keys, gate_summary, gates_markdown

    names = [args.name] if args.name else gate_names()
    if args.name and args.name not in gate_names():
        close = difflib.get_close_matches(args.name, gate_names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise HarnessError(f"unknown gate {args.name!r}", fix=f"{hint}known gates: {', '.join(gate_names())}")
    if args.markdown:
        sys.stdout.write(gates_markdown(names))
        return EXIT_PASS
    console = Console(highlight=False, width=120)  # the reference is this command's output: stdout
    for i, name in enumerate(names):  # Text throughout: keys and help hold brackets that are not rich markup
        t = Table()
        for h in ("key", "type", "default", "help"):
            t.add_column(h, no_wrap=h != "help")
        for k in gate_keys(name):
            t.add_row(*(Text(c) for c in (k.name, k.type, k.default, k.help)))
        console.print(Text(("\n" if i else "") + f"[gates.{name}] " + gate_summary(name)), t)
    return EXIT_PASS


def _report(args: argparse.Namespace) -> int:
    from reports import check_out_file, load_report, render_markdown

    src, out = Path(args.json), Path(args.out) if args.out else None
    if src.is_dir():  # a report directory: its report.json
        src = src / "report.json"
    if not src.is_file():
        raise HarnessError(
            "report not found", where=str(src), fix="pass the report.json written by `harness gate` or its directory"
        )
    if out is not None:  # refused before anything is read or written
        if out.exists() and not out.is_dir() and not args.overwrite:
            raise HarnessError("file exists", where=str(out), fix="choose another --out or pass --overwrite")
        check_out_file(out, "--out", "report.html" if args.html else "report.md")
    report = load_report(src)
    if args.html:
        return _report_html(report, src.parent, out)
    try:
        text = render_markdown(report)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise HarnessError(
            f"not a harness report ({type(e).__name__}: {clip(str(e))})",
            where=str(src),
            fix="pass the report.json written by `harness gate` (re-run the gate if it was damaged)",
        ) from None
    if out is None:
        sys.stdout.write(text)
        return EXIT_PASS
    try:
        atomic_write_text(out, text)
    except OSError as e:
        raise HarnessError(
            f"cannot write the report: {e.strerror or e}", where=str(out), fix="choose another --out"
        ) from None
    return EXIT_PASS


def _report_html(report: Report, report_dir: Path, out: Path | None) -> int:
    """report.html from a report directory's report.json and, where it has one, its items.parquet; written beside them
    (a file derived from them, replaced) or to `out`."""
    from harness.results import load
    from reports import check_out_file
    from reports.html import FILE, ITEMS_FILE, render_html

    items = load(report_dir) if (report_dir / ITEMS_FILE).is_file() else None
    target = out if out is not None else report_dir / FILE
    if out is None:
        check_out_file(target, "--out", FILE)
    try:
        path = render_html(report, items, report_dir, out=target)
    except OSError as e:
        raise HarnessError(
            f"cannot write the report: {e.strerror or e}", where=str(target), fix="choose another --out"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise HarnessError(
            f"not a harness report ({type(e).__name__}: {clip(str(e))})",
            where=str(report_dir / "report.json"),
            fix="pass the report.json written by `harness gate` (re-run the gate if it was damaged)",
        ) from None
    console.print(f"wrote {path}" + ("" if items is not None else f" (no {ITEMS_FILE}: no per-item tables)"))
    return EXIT_PASS


def _compare(args: argparse.Namespace) -> int:
    from reports.compare import FILE, compare

    out = Path(args.out) / FILE if args.out else None
    if out is not None and out.exists() and not args.overwrite:  # refused before anything is read
        raise HarnessError("file exists", where=str(out), fix="choose another --out or pass --overwrite")
    text = compare(args.a, args.b).markdown()
    sys.stdout.write(text)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out, text)
        except OSError as e:
            raise HarnessError(
                f"cannot write the comparison: {e.strerror or e}", where=str(out), fix="choose another --out"
            ) from None
    return EXIT_PASS


def _promote(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from harness.promote import promote

    done = promote(args.report, args.to, force=args.force)
    for w in done.warnings:
        console.print(f"[bold yellow]warning[/]: {escape(w)}", soft_wrap=True)
    v = done.version
    if not done.new:
        console.print(
            f"already promoted: v{v.number} is current and holds this candidate (sha256 {v.sha256[:12]}); "
            "nothing changed"
        )
    else:
        forced = " [yellow](forced)[/]" if done.forced else ""
        console.print(
            f"[green]promoted[/] v{v.number} ({v.form}, sha256 {v.sha256[:12]}){forced} -> {v.dir}; it is current now"
        )
    return EXIT_PASS


def _registry_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    reg = registry.require(Path(args.dir))
    cur = registry.state(reg)["current"]
    t = Table(title=f"Registry {reg}")
    for h in ("version", "current", "form", "sha256", "base", "verdict", "promoted_at", "by", "forced"):
        t.add_column(h)
    for v in registry.versions(reg):
        t.add_row(
            f"v{v.number}",
            "*" if v.number == cur else "",
            v.form,
            v.sha256[:12],
            v.base or "-",
            v.verdict,
            v.promoted_at,
            v.promoted_by,
            "forced" if v.forced else "",
        )
    Console(highlight=False, width=160).print(t)  # the table is this command's output: stdout
    return EXIT_PASS


def _registry_rollback(args: argparse.Namespace) -> int:
    was = registry.state(Path(args.dir))["current"]
    v = registry.rollback(Path(args.dir))
    console.print(f"[green]rolled back[/] from v{was}: v{v.number} ({v.form}, sha256 {v.sha256[:12]}) is current now")
    return EXIT_PASS


def _train(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, purpose="train")
    outcome = train_from_config(cfg, Path(args.out) if args.out else None, resume=args.resume)
    for s in outcome.stages:
        console.print(s.summary())
    console.print(f"adapter to gate: {outcome.adapter_dir}")
    return EXIT_PASS


def _sweep(args: argparse.Namespace) -> int:
    try:
        ranks = [int(x) for x in args.r.split(",") if x.strip()]
    except ValueError:
        raise HarnessError(
            f"--r must be a comma-separated list of integers, got {args.r!r}", fix="e.g. --r 8,16,32"
        ) from None
    cfg = load_config(args.config, purpose="train")
    gates = [g.strip() for g in args.gates.split(",") if g.strip()] if args.gates else None
    out = Path(args.out) if args.out else new_run_dir(prefix="sweep")
    md, png, _ = sweep(cfg, ranks, out, gates, log_to=args.log_to)
    console.print(md.read_text())
    console.print(f"table: {md}; plot: {png}")
    return EXIT_PASS


def _demo(args: argparse.Namespace) -> int:
    run_demo(Path(args.out) if args.out else None, steps=args.steps, qlora=args.qlora, cpt=args.cpt, dpo=args.dpo)
    # the demo succeeded when it wrote its report, whatever the verdict; `harness gate` is what exits 1
    return EXIT_PASS


def _data_audit(args: argparse.Namespace) -> int:
    from reports import check_out_file

    if args.json:  # refused before the audit runs
        if Path(args.json).exists() and not Path(args.json).is_dir():
            raise HarnessError("file exists and would be overwritten", where=args.json, fix="choose a new --json path")
        check_out_file(Path(args.json), "--json", "audit.json")
    allowed, disallowed = list(args.allow or []), list(args.disallow or [])
    if args.config:
        rules = load_config(args.config, purpose="data").data
        allowed += rules.allowed_licenses
        disallowed += rules.disallowed_licenses
    a = audit(
        args.file,
        Path.cwd(),
        tokenizer=args.tokenizer,
        max_length=args.max_length,
        allowed_licenses=allowed,
        disallowed_licenses=disallowed,
    )
    print("\n".join(render_audit(a)))
    if args.json:
        Path(args.json).write_text(audit_json(a), encoding="utf-8")
    if a.licenses.get("refused_rows"):
        print(f"error: {refusal_message(a.path, LicenseTally(**a.licenses))}", file=sys.stderr)
        return EXIT_BLOCKED
    return EXIT_PASS


def _data_dedup(args: argparse.Namespace) -> int:
    stats = dedup(args.input, args.output, near=not args.exact_only)
    print(
        f"read {stats['read']} rows, wrote {stats['written']} to {args.output} "
        f"(dropped {stats['exact_dropped']} exact and {stats['dropped'] - stats['exact_dropped']} near duplicates)"
    )
    return EXIT_PASS


def _export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise HarnessError("output directory is not empty", where=str(out), fix="choose a new --out directory")
    base = resolve_base(args.base, Path.cwd())
    adapter = check_adapter(args.adapter, base, key="--adapter")
    merged = merge(base, adapter, out / "merged", onto=args.onto)
    console.print(f"merged ({merged.onto}, {merged.dtype}) -> {merged.dir}")
    for qtype in args.gguf or []:
        path = export_gguf(merged.dir, out / f"model-{qtype}.gguf", qtype)
        console.print(f"GGUF {qtype} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return EXIT_PASS


def _bundle(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    base = resolve_base(cfg.model.base, cfg.base_dir, cfg.model.revision)
    if cfg.model.candidate_spec is None:
        raise HarnessError(
            "no candidate to bundle", where=f"{args.config} [model] candidate", fix="set candidate = ... (or adapter)"
        )
    cand = resolve_form(cfg.model.candidate_spec, base, key=cfg.model.candidate_key, base_dir=cfg.base_dir)
    convs, _ = load_conversations(args.prompts, cfg.base_dir, args.max_prompts)
    out = make_bundle(
        cand.base, cand.adapter, Path(args.out), convs, gguf_types=tuple(args.gguf or ["F16"]), report=args.report
    )
    console.print(f"bundle -> {out} (check it: [gates.rollback] bundle = {str(out)!r})")
    return EXIT_PASS


def _serve(args: argparse.Namespace) -> int:
    if not args.vllm:
        serve(args.model, args.adapter, host=args.host, port=args.port, name=args.name)
        return EXIT_PASS
    from pathlib import Path

    base = resolve_base(args.model, Path.cwd())
    adapters = {}
    if args.adapter:
        info = check_adapter(args.adapter, base, key="--adapter")
        adapters[args.name or info.dir.name] = info.dir
    server = vllm_server.start(base.dir, adapters, python=args.vllm_python, port=args.port or 8000, host=args.host)
    console.print(f"vLLM serving {base.id} at {server.url} (log {server.log}); point a release config at it:\n")
    console.print(server.config_lines(), markup=False, highlight=False)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_PASS


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("release-gate-harness")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Release gates for fine-tuned language models.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (tracebacks of gate errors)")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("gate", help="measure base and candidate, decide every gate, write the report")
    g.add_argument("--config", required=True, help="release config (TOML)")
    g.add_argument("--out", required=True, help="output directory for report.md, report.json, junit.xml")
    g.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    g.add_argument(
        "--log-to",
        default="none",
        choices=TRACKERS,
        help="also write the verdict and every gate's metric to this tracker: the adapter's training run when "
        "[fine_tune] report_to named it, else a new run (TensorBoard: OUT/tensorboard)",
    )
    g.set_defaults(func=_gate)

    pl = sub.add_parser("plan", help="what each gate measures and how small a change it can resolve (no model runs)")
    pl.add_argument("--config", required=True, help="release config (TOML)")
    pl.set_defaults(func=_plan)

    gs = sub.add_parser("gates", help="every gate's config keys: type, default and help (docs/config.md has them all)")
    gs.add_argument("name", nargs="?", help="one gate (default: every registered gate)")
    gs.add_argument("--markdown", action="store_true", help="print the Markdown reference (as in docs/config.md)")
    gs.set_defaults(func=_gates)

    r = sub.add_parser("report", help="re-render report.md (or report.html) from report.json")
    r.add_argument("json", help="path to report.json, or the report directory holding it")
    r.add_argument(
        "--html",
        action="store_true",
        help="write report.html into the report directory (pictures and items.parquet read from there)",
    )
    r.add_argument("--out", help="write the Markdown (or with --html, the page) here instead of stdout (the directory)")
    r.add_argument("--overwrite", action="store_true")
    r.set_defaults(func=_report)

    cp = sub.add_parser(
        "compare",
        help="two report directories side by side: each gate's verdict and change, and the items whose outcome "
        "differs between the runs",
    )
    cp.add_argument("a", help="report directory A (written by `harness gate --out`)")
    cp.add_argument("b", help="report directory B")
    cp.add_argument("--out", help="also write the comparison to DIR/compare.md")
    cp.add_argument("--overwrite", action="store_true", help="replace an existing DIR/compare.md")
    cp.set_defaults(func=_compare)

    pr = sub.add_parser(
        "promote", help="add the gated candidate to a registry as its new current version if its report passed"
    )
    pr.add_argument("--report", required=True, help="report.json written by `harness gate`")
    pr.add_argument("--to", required=True, help="registry directory (created by the first promotion)")
    pr.add_argument(
        "--force",
        action="store_true",
        help="promote even though the registry's current version is not the reference the release was gated against",
    )
    pr.set_defaults(func=_promote)

    rg = sub.add_parser("registry", help="list a registry's versions or roll its current version back")
    rsub = rg.add_subparsers(dest="registry_command", required=True)
    rl = rsub.add_parser("list", help="every version: form, sha256, base, verdict, when, by whom; * marks the current")
    rl.add_argument("dir", help="registry directory")
    rl.set_defaults(func=_registry_list)
    rr = rsub.add_parser("rollback", help="make the version that was current before the current one current again")
    rr.add_argument("dir", help="registry directory")
    rr.set_defaults(func=_registry_rollback)

    t = sub.add_parser("train", help="fine-tune (CPT and/or LoRA/QLoRA SFT) as the config's [fine_tune] says")
    t.add_argument("--config", required=True, help="TOML with a [fine_tune] section (a release config or its own file)")
    t.add_argument("--out", help="output directory (default: [fine_tune] output, else a new runs/train-TIMESTAMP)")
    t.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in --out from its last checkpoint"
    )
    t.set_defaults(func=_train)

    sw = sub.add_parser("sweep", help="train one adapter per LoRA rank on the same data and seed, gate each, rank them")
    sw.add_argument("--config", required=True, help="TOML with a [fine_tune] section")
    sw.add_argument("--r", required=True, help="ranks, comma-separated, e.g. 8,16,32")
    sw.add_argument("--out", help="output directory (default: a new runs/sweep-TIMESTAMP)")
    sw.add_argument(
        "--gates",
        help="gates each rank is decided by, comma-separated (default: the config's perplexity, pass_at_k, judge, "
        "calibration and regression gates; a target gate and regression are required)",
    )
    sw.add_argument(
        "--log-to",
        default="none",
        choices=TRACKERS,
        help="each rank's gate metrics to its own training run in this tracker ([fine_tune] report_to)",
    )
    sw.set_defaults(func=_sweep)

    d = sub.add_parser("demo", help="train a LoRA on the embedded model, gate it, write the report")
    d.add_argument("--out", help="output directory (default: a new runs/demo-TIMESTAMP)")
    d.add_argument("--steps", type=int, default=30, help="training steps (default 30: about 3.5 min on 2 CPU cores)")
    d.add_argument("--qlora", action="store_true", help="QLoRA: the base quantised to 4-bit NF4 while training")
    d.add_argument("--cpt", action="store_true", help="continued pre-training on raw incident text before SFT")
    d.add_argument(
        "--dpo",
        action="store_true",
        help="a short DPO stage after SFT (the correct JSON answer preferred over a plausible wrong one), gated with "
        "[gates.preference] on held-out pairs",
    )
    d.set_defaults(func=_demo)

    ex = sub.add_parser("export", help="merge the adapter into full-precision weights and write GGUF files")
    ex.add_argument("--base", default="smollm2-135m-instruct", help="base model (alias, directory, .gguf, hub id)")
    ex.add_argument("--adapter", required=True, help="PEFT adapter directory")
    ex.add_argument("--out", required=True, help="new output directory (merged/ and model-TYPE.gguf)")
    ex.add_argument("--gguf", action="append", choices=["F32", "F16", "Q8_0"], help="GGUF type (repeatable)")
    ex.add_argument(
        "--onto",
        choices=["full-precision", "dequantized-nf4"],
        default="full-precision",
        help="merge onto the original weights (default) or the NF4 weights a QLoRA adapter trained against",
    )
    ex.set_defaults(func=_export)

    bu = sub.add_parser("bundle", help="write the release bundle: adapter, merge, GGUF, manifests, recorded outputs")
    bu.add_argument("--config", required=True, help="release config (its [model] base and adapter)")
    bu.add_argument("--out", required=True, help="new bundle directory")
    bu.add_argument("--gguf", action="append", choices=["F32", "F16", "Q8_0"], help="GGUF type (default F16)")
    bu.add_argument("--report", help="the gating report.json to include")
    bu.add_argument("--prompts", default="builtin:judge_general", help="prompts whose greedy outputs are recorded")
    bu.add_argument("--max-prompts", type=int, default=8)
    bu.set_defaults(func=_bundle)

    da = sub.add_parser("data", help="audit or deduplicate a training file")
    dsub = da.add_subparsers(dest="data_command", required=True)
    au = dsub.add_parser("audit", help="counts, duplicates, rendered examples, token lengths, truncation, templates")
    au.add_argument("file", help="training data (JSONL or .txt)")
    au.add_argument("--tokenizer", default="smollm2-135m-instruct", help="base whose tokenizer/template to use")
    au.add_argument("--max-length", type=int, default=512, help="the training max_length (default 512)")
    au.add_argument("--json", help="also write the audit as JSON here")
    au.add_argument("--config", help="a release config whose [data] allowed_licenses / disallowed_licenses apply")
    au.add_argument("--allow", action="append", metavar="LICENSE", help="a licence rows may carry (repeatable)")
    au.add_argument("--disallow", action="append", metavar="LICENSE", help="a licence refused (repeatable; exit 1)")
    au.set_defaults(func=_data_audit)
    dd = dsub.add_parser("dedup", help="write a copy without exact and near duplicates (never overwrites)")
    dd.add_argument("input")
    dd.add_argument("output")
    dd.add_argument("--exact-only", action="store_true", help="drop exact duplicates only")
    dd.set_defaults(func=_data_dedup)

    s = sub.add_parser(
        "serve",
        help="serve a base (+ adapter) through an OpenAI-compatible API on 127.0.0.1: vLLM with --vllm, else a "
        "zero-dependency fallback for tiny models (one request at a time, no streaming)",
    )
    s.add_argument("--vllm", action="store_true", help="start vLLM's OpenAI server with the harness's flags")
    s.add_argument("--vllm-python", help="the interpreter of vLLM's environment (default $HARNESS_VLLM_PYTHON)")
    s.add_argument("--model", default="smollm2-135m-instruct", help="base model (alias, directory, .gguf or hub id)")
    s.add_argument("--adapter", help="PEFT adapter directory to serve on top of the base")
    s.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (0 picks a free one; the URL is printed)")
    s.add_argument("--name", help="model id clients ask for (default: the adapter's folder name, else --model)")
    s.set_defaults(func=_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    from rich.markup import escape

    from harness.promote import PromotionRefused

    try:
        return args.func(args)
    except PromotionRefused as e:
        console.print(f"[bold red]promotion refused[/]: {escape(str(e))}", soft_wrap=True)
        return EXIT_BLOCKED
    except HarnessError as e:
        console.print(f"[bold red]error[/]: {escape(str(e))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        console.print("interrupted; measurements finished so far are cached and a re-run resumes from them")
        return 130
    except Exception:
        console.print("[bold red]internal error[/] (please report it with this traceback):")
        console.print(traceback.format_exc())
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
