"""The ``careerbot`` command: index, ask, chat, articles, demo.

Errors are one line on standard error and exit status 2; progress and notices
go to standard error so that standard output stays machine-readable.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .errors import CareerbotError
from .logs import redact
from .settings import Settings, load_settings

if TYPE_CHECKING:
    from .prompts import PromptLibrary

__all__ = ["main"]

EXIT_ERROR = 2
EXIT_PROBLEMS = 1
#: Modules that add subcommands: each has ``register(subparsers)`` adding parsers whose
#: ``func(args, settings) -> int`` runs the command.
EXTENSION_COMMANDS: tuple[str, ...] = ("bot.eval.cli", "bot.slack.cli", "bot.health", "bot.calibrate")


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _advisor(settings: Settings):  # imported late: `careerbot --help` stays instant
    from .pipeline import Advisor

    return Advisor(settings=settings, notify=lambda m: _err(f"careerbot: {m}"))


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from .aspects import AspectLexicon
    from .embedders import make_embedder
    from .pipeline import ASPECTS_FILE, learn_parts, refresh_index

    embedder = make_embedder(settings)
    report = refresh_index(
        settings,
        embedder,
        force=args.force,
        notify=lambda m: _err(f"careerbot: {m}"),
        progress=None if args.quiet else _err,
        must_save=True,
    )
    kb = report.knowledge
    plan = report.plan
    what = "up to date" if plan is None else f"built ({plan.to_embed} passages embedded, {plan.reused} reused)"
    print(
        f"index {what}: {len(kb.articles)} articles, {len(kb.sections)} sections, {report.index.size} passages "
        f"in {report.seconds:.1f} s at {report.index.path}"
    )
    # The parts are learned now too, so that a bot started later on a read-only data folder has them.
    aspects = AspectLexicon.load(settings.knowledge_dir / ASPECTS_FILE)
    if (learned := learn_parts(settings, knowledge=kb, aspects=aspects, embedder=embedder)) is not None:
        print(f"parts learned from {learned.examples} questions in {settings.parts_training_path}")
    for warning in kb.warnings:
        _err(f"careerbot: warning: {warning}")
    if kb.problems:
        _err(f"careerbot: {len(kb.problems)} article(s) skipped")
    return EXIT_PROBLEMS if args.strict and (kb.problems or kb.warnings) else 0


def _print_answer(answer, prompts: PromptLibrary, *, as_json: bool = False, brief: bool = False) -> None:
    if as_json:
        print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
    elif brief:
        from .terminal import brief_text

        print(brief_text(answer, prompts) + "\n", flush=True)
    else:
        print(answer.text + "\n", flush=True)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    advisor = _advisor(settings)
    if args.backend:
        advisor.backend(args.backend)
    questions = [args.question] if args.question else (line.strip() for line in sys.stdin)
    for q in questions:
        if not q:
            continue
        answer = advisor.ask(q, top_k=args.top_k, backend=args.backend)
        _print_answer(answer, advisor.prompts, as_json=args.json, brief=args.brief)
    return 0


def _chat(advisor, *, backend: str | None, top_k: int | None, brief: bool = False) -> None:
    from .terminal import LineEditor

    # On a terminal: readline editing, and the questions of earlier sessions behind the Up arrow.
    editor = LineEditor.open(data_dir=advisor.settings.data_dir, size=advisor.settings.chat_history_size, warn=_err)
    history: list[str] = []
    language = "ja"  # of the chat's own lines: Japanese, then the language of the latest answer

    def say(message: str) -> None:
        _err(advisor.prompts.render("chat.md", language=language, message=message))

    say("welcome")
    while True:
        try:
            line = input("? ").strip()  # a plain prompt: escape sequences would need \001…\002 around them for readline
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if not line:
            continue
        editor.remember(line)
        if line in ("/reset", "/new"):
            history.clear()
            say("reset")
            continue
        if line == "/brief":
            brief = not brief
            say("brief_on" if brief else "brief_off")
            continue
        if line in ("/quit", "/exit"):
            return
        answer = advisor.ask(line, history=history, top_k=top_k, backend=backend)
        language = answer.language
        _print_answer(answer, advisor.prompts, brief=brief)
        history.append(line)


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    advisor = _advisor(settings)
    _chat(advisor, backend=args.backend, top_k=args.top_k, brief=args.brief)
    return 0


def cmd_articles(args: argparse.Namespace, settings: Settings) -> int:
    from .pipeline import load_knowledge_base

    kb = load_knowledge_base(settings)
    if args.json:
        rows = [
            {"slug": a.slug, "title": a.title, "sections": len(a.sections), "path": str(a.path),
             "related_jobs": list(a.related_jobs)}
            for a in kb.articles
        ]
        report = {"articles": rows, "problems": [str(p) for p in kb.problems], "warnings": list(kb.warnings)}
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        for a in kb.articles:
            print(f"{a.slug:<28} {len(a.sections):>3} sections  {a.title}")
        for p in kb.problems:
            _err(f"careerbot: skipped {p}")
        for warning in kb.warnings:
            _err(f"careerbot: warning: {warning}")
    return EXIT_PROBLEMS if args.strict and (kb.problems or kb.warnings) else 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from .careers import career_title

    start = time.perf_counter()
    advisor = _advisor(settings)
    _err(f"careerbot: ready in {time.perf_counter() - start:.1f} s — {len(advisor.knowledge.articles)} articles, "
         f"{advisor.index.size} passages")
    names = [career_title(a.title) for a in advisor.knowledge.articles]
    samples = advisor.prompts.render("samples.md", language="ja", careers=names).splitlines()
    samples = [s for s in samples if s.strip()]
    for q in samples:
        print(f"? {q}")
        print(advisor.ask(q).text + "\n", flush=True)
    if args.no_chat:
        pass
    elif sys.stdin.isatty():
        _chat(advisor, backend=None, top_k=None)
    else:
        _err("careerbot: no terminal: skipping the chat; run `careerbot chat`")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="careerbot",
        description="A Japanese-first career advisor answering from a knowledge base of articles, with citations.",
    )
    parser.add_argument("--version", action="version", version=f"careerbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="build or update the index of the knowledge base")
    p.add_argument("--strict", action="store_true", help="exit 1 if any article could not be loaded or has warnings")
    p.add_argument("--force", action="store_true", help="rebuild even if the index is current")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="answer one question (or one per line of standard input)")
    p.add_argument("question", nargs="?", help="the question; omitted: read questions from standard input")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print one JSON object per answer")
    shape.add_argument("--brief", action="store_true", help="brief answers: sources by title, no links or related careers")
    p.add_argument("--top-k", type=int, default=None, metavar="N", help="passages to retrieve")
    p.add_argument("--backend", default=None, metavar="NAME", help="answer backend (default: CAREERBOT_BACKEND)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="an interactive conversation that keeps context")
    p.add_argument("--brief", action="store_true", help="start with brief answers (/brief toggles)")
    p.add_argument("--top-k", type=int, default=None, metavar="N")
    p.add_argument("--backend", default=None, metavar="NAME")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("articles", help="list the articles the knowledge base holds")
    p.add_argument("--json", action="store_true")
    p.add_argument("--strict", action="store_true", help="exit 1 if any article could not be loaded")
    p.set_defaults(func=cmd_articles)

    p = sub.add_parser("demo", help="build the index, answer sample questions, then chat")
    p.add_argument("--no-chat", action="store_true", help="do not open the chat afterwards")
    p.set_defaults(func=cmd_demo)

    for module in EXTENSION_COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "top_k", None) is not None and not 1 <= args.top_k <= 50:
        _err("careerbot: error: --top-k must be between 1 and 50")
        return EXIT_ERROR
    try:
        settings = load_settings()
        code = int(args.func(args, settings))
        sys.stdout.flush()  # a reader that left shows up here, not as a traceback at exit
        return code
    except CareerbotError as exc:
        _err(f"careerbot: error: {redact(str(exc))}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `careerbot ask … | head -1`: the reader has what it wanted
        _discard_output()
        return 0


def _discard_output() -> None:
    """Point standard output and error at /dev/null, so that Python's flush at exit cannot fail again.

    (The recipe of the Python documentation, "Note on SIGPIPE".)
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):  # already closed, or not a real file (tests)
            pass
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
