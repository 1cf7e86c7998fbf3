"""A real `careerbot` process on a pseudo-terminal, seen through a terminal emulator (pyte).

Tests type real key sequences into the master side and wait, with generous
deadlines, for what a user would see: the emulated screen (cursor, the line
being edited) and the text printed so far. Nothing is timed by sleeping.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Sequence

import pyte

#: Generous: the machine has 2 shared cores and the chat loads its models first.
DEADLINE_S = 240.0
COLUMNS, LINES = 120, 40

LEFT, RIGHT, UP, DOWN = "\x1b[D", "\x1b[C", "\x1b[A", "\x1b[B"
CTRL_A, CTRL_E, CTRL_D, CTRL_L = "\x01", "\x05", "\x04", "\x0c"
BACKSPACE = "\x7f"
ENTER = "\r"
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|[\x01\x02\x07\x08]")


class Terminal:
    """``careerbot ARGS`` with a pty for standard input, output and error."""

    def __init__(self, args: Sequence[str], env: dict[str, str], *, wrapper: Sequence[str] = ()) -> None:
        exe = shutil.which("careerbot")
        cmd = [exe] if exe else [sys.executable, "-m", "bot"]
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.proc = subprocess.Popen(
            [*wrapper, *cmd, *args], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        self._master = master
        self.screen = pyte.Screen(COLUMNS, LINES)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()

    # -- what the user sees ---------------------------------------------------------------------

    @property
    def text(self) -> str:
        """Everything printed so far, as text without terminal control sequences."""
        return _ESCAPES.sub("", self.raw.decode("utf-8", errors="replace")).replace("\r", "")

    @property
    def line(self) -> str:
        """The screen line the cursor is on, without trailing blanks."""
        return self.screen.display[self.screen.cursor.y].rstrip()

    def at_prompt(self, typed: str = "") -> bool:
        """Whether the cursor sits at the end of ``? <typed>`` (the chat waits for input there)."""
        return self.line == f"? {typed}".rstrip() and self.screen.cursor.x == width(f"? {typed}")

    # -- driving it -----------------------------------------------------------------------------

    def type(self, keys: str) -> None:
        os.write(self._master, keys.encode("utf-8"))

    def wait(self, condition: Callable[[], bool], what: str, *, deadline_s: float = DEADLINE_S) -> None:
        """Read output until ``condition()`` holds; fail with the screen and the output's tail after the deadline."""
        end = time.monotonic() + deadline_s
        while not condition():
            left = end - time.monotonic()
            if left <= 0:
                screen = "\n".join(line.rstrip() for line in self.screen.display).rstrip()
                raise AssertionError(f"timed out waiting for {what}\n--- screen:\n{screen}\n--- output tail:\n{self.text[-3000:]}")
            if not self._read(min(left, 1.0)) and self.proc.poll() is not None and not condition():
                raise AssertionError(f"careerbot exited ({self.proc.returncode}) before {what}\n{self.text[-3000:]}")

    def ask(self, keys: str, *, what: str) -> str:
        """At an empty prompt, type ``keys`` and Enter; return what was printed up to the next prompt."""
        self.wait(self.at_prompt, "the prompt")
        self.type(keys)
        return self.enter(what=what)

    def enter(self, *, what: str) -> str:
        """Press Enter; wait for the answer and the next prompt; return what was printed from the key on."""
        start = len(self.text)
        self.type(ENTER)
        self.wait(lambda: "\n" in self.text[start:] and self.at_prompt(), f"the answer to {what}")
        return self.text[start:]

    def quit(self) -> int:
        """Ctrl-D at the prompt; the exit status."""
        self.wait(self.at_prompt, "the prompt")
        self.type(CTRL_D)
        self.wait(lambda: self.proc.poll() is not None, "careerbot to exit after Ctrl-D")
        while self._read(0.1):  # whatever it printed last
            pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)
        os.close(self._master)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the process closed the terminal
            return False
        self.raw += data
        self._stream.feed(data)
        return bool(data)


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide characters take two)."""
    from wcwidth import wcswidth

    return wcswidth(text)
