"""``rag`` command line: models, index, search (a thin shell over ``rag.engine``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

from .settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "no_llm", False):
        return _settings_from(args).replace(llm_model="", llm_url="")
    return _settings_from(args)


def _settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        corpus_dir=getattr(args, "corpus", None),
        index_dir=getattr(args, "index", None),
        embedding_model=getattr(args, "embedding_model", None),
        llm_model=getattr(args, "llm_model", None),
        search_mode=getattr(args, "mode", None),
    )


def cmd_models(args: argparse.Namespace) -> int:
    from .models import DEFAULT_MODELS, MODELS, ProvisionError, provision, verify

    settings = _settings(args)
    keys = args.names or list(DEFAULT_MODELS)
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        print(
            f"unknown model(s): {', '.join(unknown)}; known: {', '.join(MODELS)}", file=sys.stderr
        )
        return 2
    for key in keys:
        try:
            provision(MODELS[key], settings.models_dir, settings.downloads_dir)
        except ProvisionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.verify:
            problems = verify(MODELS[key], settings.models_dir)
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            if problems:
                return 1
            print(f"{key}: sha256 verified")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from .engine import Engine

    engine = Engine(_settings(args))
    report = engine.build_index(rebuild=args.rebuild, progress=not args.quiet)
    if args.json:
        print(
            json.dumps(
                {
                    "build_id": report.build_id,
                    "unchanged": report.unchanged,
                    "full_rebuild": report.full_rebuild,
                    "reason": report.reason,
                    "files_total": report.files_total,
                    "files_embedded": report.files_embedded,
                    "files_reused": report.files_reused,
                    "files_removed": report.files_removed,
                    "files_copies": report.files_copies,
                    "stories": report.stories,
                    "files_skipped": {s.file: s.reason for s in report.files_skipped},
                    "chunks_total": report.chunks_total,
                    "chunks_embedded": report.chunks_embedded,
                    "seconds": round(report.seconds, 3),
                },
                ensure_ascii=False,
                indent=1,
            )
        )
    else:
        print(report.summary())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .engine import Engine

    engine = Engine(_settings(args))
    filters = engine.filters_for(args.query, _filters(args))
    hits = engine.search(args.query, k=args.k, mode=args.mode, filters=filters)
    if args.json:
        fields = (
            "rank",
            "file",
            "title",
            "date",
            "source",
            "chunk",
            "start",
            "end",
            "score",
            "text",
        )
        # duplicates: the story's other copies (another outlet, headline or day)
        results = [
            {f: getattr(h, f) for f in fields} | {"duplicates": list(h.duplicates)} for h in hits
        ]
        out = {
            "query": args.query,
            "filters": filters.to_dict() if filters else None,
            "results": results,
        }
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    if filters:
        print(f"filters: {_describe(filters)}")
    if not hits:
        print("no passages found")
    for h in hits:
        when = f" ({h.date})" if h.date else ""
        print(f"{h.rank}. {h.file} [{h.start}:{h.end}] score={h.score:.4f}  {h.title}{when}")
        print("   " + " ".join(h.text.split()))
        if h.duplicates:
            print("   also: " + "; ".join(_copy_line(d) for d in h.duplicates))
        print()
    return 0


def _copy_line(duplicate: dict) -> str:
    """Another copy of a story: its outlet (or file) and date."""
    where = duplicate.get("source") or duplicate["file"]
    return f"{where} ({duplicate['date']})" if duplicate.get("date") else where


def _filters(args: argparse.Namespace):
    """``--since/--until/--source`` as Filters, or None; a bad date exits with a message."""
    from .timefilter import explicit

    try:
        return explicit(args.since, args.until, args.source)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc


def _describe(filters) -> str:
    parts = [f"since {filters.since}"] if filters.since else []
    parts += [f"until {filters.until}"] if filters.until else []
    parts += [f"source {filters.source}"] if filters.source else []
    return ", ".join(parts) + (f" (from «{filters.expression}»)" if filters.expression else "")


def cmd_ask(args: argparse.Namespace) -> int:
    from .answer import QuestionError
    from .engine import Engine

    engine = Engine(_settings(args))
    history = []
    if args.history:
        try:
            raw = json.loads(Path(args.history).read_text(encoding="utf-8"))
            history = [(str(turn[0]), str(turn[1])) for turn in raw]
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            print(
                f"error: {args.history}: not a JSON list of [user, assistant] ({exc})",
                file=sys.stderr,
            )
            return 2
    try:
        events = engine.ask(args.question, history, use_llm=not args.no_llm, filters=_filters(args))
        result = {}
        for event in events:
            if event["type"] == "token" and not (args.json or args.markdown):
                print(event["text"], end="", flush=True)
            elif event["type"] == "done":
                result = event["result"]
    except QuestionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        keys = (
            "question",
            "standalone_question",
            "answer",
            "refused",
            "fallback",
            "citations",
            "passages",
            "timings",
            "filters",
        )
        print(json.dumps({k: result[k] for k in keys}, ensure_ascii=False, indent=1))
        return 0
    if args.markdown:  # the same document the UI's conversation export gives
        from .export import Turn, to_markdown

        print(to_markdown([Turn.from_result(result)], engine.settings.language), end="")
        return 0
    print("\n")
    if result["fallback"]:
        why = {
            "echo": "only repeated the question",
            "language": "answered in another language",
            "off_type": "did not give the kind of answer asked for",
            "llm_refusal": "found no answer, though the passages match the question well",
            "unsupported": "wrote an answer its passages do not support",
        }
        print(f"(the LLM {why[result['fallback']]}: best-matching sentences instead)")
    print(result["answer"])
    for c in result["citations"]:
        when = f" ({c['date']})" if c.get("date") else ""
        print(f"[{c['n']}] {c['file']} [{c['start']}:{c['end']}] {c['title']}{when}")
    for s in result["unsupported"]:
        print(f"(unsupported) {s}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .evaluate import evaluate_engine, format_table, load_questions

    engine = Engine(_settings(args))
    questions = load_questions(args.file)
    if args.build_index:  # incremental: a no-op when the index is up to date
        engine.build_index()
    modes = args.modes.split(",") if args.modes else [engine.settings.search_mode]
    engine.search("прогрев")  # load models before timing
    use_llm = not args.no_llm and bool(engine.settings.llm_model or engine.settings.llm_url)
    results = {}
    for mode in modes:
        engine.retriever.clear_cache()  # time every mode with fresh query embeddings
        results[mode] = evaluate_engine(engine, questions, mode, args.answers, use_llm)
    if args.json:
        print(
            json.dumps(
                results if len(modes) > 1 else results[modes[0]], ensure_ascii=False, indent=1
            )
        )
    else:
        print(format_table({m: r["summary"] for m, r in results.items()}))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .calibration import FILE_NAME, collect, judged_path
    from .engine import Engine
    from .evaluate import load_questions
    from .signals import Signals

    settings = _settings(args).replace(calibration="threshold")
    judge = settings.llm_judge and not args.no_llm and bool(settings.llm_url or settings.llm_model)
    if not judge:
        settings = settings.replace(llm_model="", llm_url="")
    engine = Engine(settings)
    questions = [q for path in args.files for q in load_questions(path)]
    out = args.out or settings.index_dir / FILE_NAME
    meta = {"embedding_model": settings.embedding_model, "fitted_on": [p.name for p in args.files]}
    with tqdm(total=len(questions), desc="signals", disable=args.json) as bar:
        signals, answerable = collect(engine.pipeline(use_llm=False), questions, bar.update)
    report = _fit_and_report(signals, answerable, args.false_refusal, meta, out, Signals.names())
    if judge:
        from .prompts import judge_prompt_id

        pipeline = engine.pipeline(use_llm=True)
        meta |= {"llm": pipeline.llm.name, "judge_prompt": judge_prompt_id()}
        with tqdm(total=len(questions), desc="LLM judgements", disable=args.json) as bar:
            signals, _ = collect(pipeline, questions, bar.update, judge=True)
        report["judged"] = _fit_and_report(
            signals, answerable, args.false_refusal, meta, judged_path(out), Signals.judged_names()
        )
    report = {"questions": len(questions), **report}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    print(f"fitted on {len(questions)} questions ({sum(answerable)} answerable)")
    _print_fit(report, "without an LLM")
    if judge:
        _print_fit(report["judged"], f"with the LLM's judgement ({meta['llm']})")
    return 0


def _fit_and_report(
    signals, answerable: list[bool], false_refusal: float, meta: dict, out: Path, features
) -> dict:
    """Fit and write one model; its refusals on the fitted questions and held out."""
    from .calibration import curve, fit, held_out_refusals

    fitted = fit(signals, answerable, false_refusal, meta, features=features)
    fitted.save(out)
    probabilities = [fitted.probability(s) for s in signals]
    point = curve(probabilities, answerable, [fitted.threshold])[0]
    held = None  # cross-validation needs each kind in every fold's training questions
    if min(sum(answerable), len(answerable) - sum(answerable)) >= 5:
        decisions = held_out_refusals(signals, answerable, false_refusal, features=features)
        held = _held_out_rates(decisions, answerable)
    return {"file": str(out), **point, "held_out": held}


def _print_fit(report: dict, which: str) -> None:
    print(
        f"{which} -> {report['file']}\n"
        f"  threshold {report['threshold']:.3f}: refuses {report['refusal']:.0%} of the "
        f"unanswerable and {report['false_refusal']:.0%} of the answerable questions"
    )
    held = report["held_out"]
    if held is None:
        print("  too few questions of each kind (5) to say how it does on new questions")
    else:
        print(
            f"  on questions left out of the fit (5-fold cross-validation), as on new ones: "
            f"{held['refusal']:.0%} and {held['false_refusal']:.0%}"
        )


def _held_out_rates(decisions: list[list[bool]], answerable: list[bool]) -> dict[str, float]:
    """Refusal of the unanswerable and of the answerable questions, over every held-out
    decision."""
    rates = {}
    for key, kind in (("refusal", False), ("false_refusal", True)):
        votes = [d for ds, a in zip(decisions, answerable, strict=True) if a is kind for d in ds]
        rates[key] = sum(votes) / len(votes)
    return rates


def cmd_settings(args: argparse.Namespace) -> int:
    groups = _settings(args).grouped()
    if args.json:
        print(json.dumps(groups, ensure_ascii=False, indent=1))
        return 0
    for group, items in groups.items():
        print(f"[{group}]")
        width = max(len(name) for name in items)
        for name, item in items.items():
            value = json.dumps(item["value"], ensure_ascii=False)
            print(f"  {name:<{width}} = {value}  ({item['source']})")
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--corpus", type=Path, help="folder of articles (.txt .md .html .pdf .docx)"
    )
    common.add_argument("--index", type=Path, help="folder where the index lives")
    common.add_argument(
        "--embedding-model", help="provisioned key, sentence-transformers name or path"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", parents=[common], help="provision the offline models")
    p.add_argument("names", nargs="*", help="model keys (default: the default models)")
    p.add_argument("--verify", action="store_true", help="re-hash the installed files")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("index", parents=[common], help="build or update the index")
    p.add_argument("--rebuild", action="store_true", help="re-embed everything")
    p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", parents=[common], help="find passages (no LLM)")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=None, help="number of passages")
    p.add_argument("--mode", choices=["dense", "lexical", "hybrid"], default=None)
    p.add_argument("--json", action="store_true")
    _filter_options(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("timeline", parents=[common], help="dated sentences about a name")
    p.add_argument("query")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("ask", parents=[common], help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true", help="the answer and its sources as Markdown")
    p.add_argument("--history", help="JSON file: [[user, assistant], ...]")
    p.add_argument("--no-llm", action="store_true", help="extractive answer, no LLM")
    _filter_options(p)
    p.add_argument("--llm-model", help="provisioned key or GGUF path")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "eval", parents=[common], help="score retrieval (and answers) on a JSONL set"
    )
    p.add_argument("file", type=Path)
    p.add_argument(
        "--modes", help="comma-separated search modes to compare, e.g. dense,lexical,hybrid"
    )
    p.add_argument("--answers", action="store_true", help="also answer and score the answers")
    p.add_argument(
        "--build-index", action="store_true", help="first build or update the index of --corpus"
    )
    p.add_argument(
        "--no-llm",
        action="store_true",
        help="no LLM: follow-ups searched with the previous question, extractive answers",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "calibrate",
        parents=[common],
        help="fit when to refuse on JSONL questions with answerable and unanswerable ones",
    )
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument(
        "--false-refusal",
        type=float,
        default=0.05,
        help="share of answerable questions it may refuse (default 0.05)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="where to write it (default: INDEX/calibration.json; with an LLM also "
        "INDEX/calibration-judged.json)",
    )
    p.add_argument(
        "--no-llm",
        action="store_true",
        help="fit only the model for answers without an LLM (no LLM judgements)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser(
        "settings", parents=[common], help="show the effective settings and their sources"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser(
        "serve-embeddings",
        parents=[common],
        help="serve the embedding model over an OpenAI-compatible /v1/embeddings",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    p.set_defaults(func=cmd_serve_embeddings)
    return parser


def cmd_serve_embeddings(args: argparse.Namespace) -> int:
    from .embedding_service import serve

    serve(_settings(args), args.host, args.port)
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    from .engine import Engine

    entries = Engine(_settings(args)).timeline(args.query)
    if args.json:
        out = {"query": args.query, "entries": [e.to_dict() for e in entries]}
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    if not entries:
        print("no dated sentences found")
    for e in entries:
        print(f"{e.date}  {' '.join(e.text.split())}")
        print(f"    {e.file} [{e.start}:{e.end}] {e.source}".rstrip())
    return 0


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="only articles from this date on (YYYY[-MM[-DD]])")
    p.add_argument("--until", help="only articles up to this date (YYYY[-MM[-DD]])")
    p.add_argument("--source", help="only articles of this outlet (part of its name)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from .errors import RagError

    try:
        return args.func(args)
    except (RagError, OSError) as exc:  # the user can fix these; anything else is a bug
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
