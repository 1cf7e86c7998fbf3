"""The terminal side of ``careerbot chat``: line editing with a kept history, and the brief form of an answer.

Line editing is GNU readline from the standard library (arrow keys, Ctrl-A/E,
Ctrl-L, Up/Down through earlier questions), used only when standard input and
output are terminals; piped input is read as plain lines and leaves no history.
The history is kept in ``<data_dir>/chat_history``: at most
``CAREERBOT_CHAT_HISTORY_SIZE`` questions, rewritten atomically after every
question. A history that cannot be written (a read-only data dir) costs one
warning line, never the chat.
"""

from __future__ import annotations

import codecs
import contextlib
import locale
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from .answer import Answer
from .careers import career_title
from .prompts import PromptLibrary

__all__ = ["HISTORY_FILE", "LineEditor", "brief_text", "use_utf8_ctype"]

#: The chat's history, under the data dir: one question a line.
HISTORY_FILE = "chat_history"
#: UTF-8 locales tried, in order, when the environment's LC_CTYPE is not UTF-8 (or not installed).
UTF8_FALLBACKS = ("C.UTF-8", "C.utf8", "en_US.UTF-8")


def _is_utf8(encoding: str | None) -> bool:
    try:
        return codecs.lookup(encoding or "ascii").name == "utf-8"
    except LookupError:
        return False


def use_utf8_ctype() -> None:
    """Give readline a UTF-8 ``LC_CTYPE`` when Python reads the terminal as UTF-8.

    GNU readline measures characters by ``LC_CTYPE``: in the C locale it takes 「年」 for
    three one-column characters, so Backspace removes a third of it and the cursor
    lands mid-glyph. The environment's locale is used when it is UTF-8; otherwise the
    first of `UTF8_FALLBACKS` that exists. Readline re-reads the locale from the
    environment (``LC_ALL``, else ``LC_CTYPE``, else ``LANG``) on every line, so the
    fallback is put into the variable that decides. A terminal that Python reads in
    another encoding keeps its locale.
    """
    if not _is_utf8(sys.stdin.encoding) or not hasattr(locale, "nl_langinfo"):
        return
    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    if _is_utf8(locale.nl_langinfo(locale.CODESET)):
        return
    for name in UTF8_FALLBACKS:
        try:
            locale.setlocale(locale.LC_CTYPE, name)
        except locale.Error:
            continue
        os.environ["LC_ALL" if os.environ.get("LC_ALL") else "LC_CTYPE"] = name
        return


class LineEditor:
    """The chat's line editing: once opened on a terminal, ``input()`` edits with readline and `remember` keeps history."""

    def __init__(self, *, history_path: Path | None, warn: Callable[[str], None]) -> None:
        self.history_path = history_path
        self._warn = warn
        self._readline: ModuleType | None = None

    @classmethod
    def open(cls, *, data_dir: Path, size: int, warn: Callable[[str], None]) -> LineEditor:
        """An editor for this process's terminal; ``size`` questions of history kept (0: none written)."""
        editor = cls(history_path=data_dir / HISTORY_FILE if size > 0 else None, warn=warn)
        if sys.stdin.isatty() and sys.stdout.isatty():
            editor._start_readline(size)
        return editor

    def _start_readline(self, size: int) -> None:
        use_utf8_ctype()  # before the import: readline reads the locale when it initialises
        try:
            import readline
        except ImportError:  # a Python built without it: plain lines
            return
        self._readline = readline
        readline.set_auto_history(False)  # `remember` adds lines, without repeats
        if "libedit" not in (readline.__doc__ or ""):  # libedit binds ^L itself, in its own syntax
            readline.parse_and_bind(r'"\C-l": clear-screen')
        readline.set_history_length(size)
        if self.history_path is not None:
            try:
                readline.read_history_file(self.history_path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._warn(f"careerbot: warning: chat history not read ({exc.strerror or exc}): {self.history_path}")

    def remember(self, line: str) -> None:
        """Add ``line`` to the history (unless it repeats the last entry) and save the history."""
        rl = self._readline
        if rl is None or not line.strip():
            return
        length = rl.get_current_history_length()
        if length and rl.get_history_item(length) == line:
            return
        rl.add_history(line)
        self._save()

    def _save(self) -> None:
        """Write the history to a temporary file beside it, then move it into place (atomic)."""
        rl, path = self._readline, self.history_path
        if rl is None or path is None:
            return
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
            os.close(fd)
            rl.write_history_file(tmp)  # keeps the last `size` entries
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            self.history_path = None  # warn once; the chat goes on without a kept history
            self._warn(f"careerbot: warning: chat history not saved ({exc.strerror or exc}): {path}")
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def brief_text(answer: Answer, prompts: PromptLibrary) -> str:
    """``answer`` in brief (``answer_brief.md.j2``): its text, sources numbered by title, no links or related careers.

    The body is the answer's text without the lines that list its sources, nearest
    topics and related careers (recognised by their links, as the Slack renderer does).
    """
    body = answer.body
    sources = [{"n": c.n, "career": career_title(c.title), "section": c.breadcrumb} for c in answer.citations]
    return prompts.render("answer_brief.md", language=answer.language, body=body, sources=sources)
