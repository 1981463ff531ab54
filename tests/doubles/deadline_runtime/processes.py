"""Processes the runtime double starts: each in its own process group inside the caller's session.

Why process groups: a managed process tree must be killable on its own (cancel, Shutdown) and also die with
its Worker. Each process started here calls ``setpgid(0, 0)``: it leads a new process group but stays in the
Worker's session. Killing the group (``killpg``) reaches every descendant that did not leave the group, even
one re-parented after its parent died (a daemonised grand-child keeps the group). The farm emulator kills a
"dying machine" by killing every process of the Worker's *session* (:func:`live_pids_in_session`), which
reaches these groups too. A process that calls ``setsid()`` itself escapes both, as it would escape Deadline.

What the runtime kills, it kills at once (SIGKILL: .NET's ``Process.Kill``, which Deadline's Worker uses, sends
SIGKILL on Unix and has no grace period): the whole group when the managed process asked for
``UseProcessTree``, else the leader only, whose children then live on (re-parented, still in the group).

Linux only (``/proc``). Zombies count as dead: nothing may be waiting to reap a re-parented grand-child.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

MAX_BUFFERED_LINES = 100_000  # lines kept for a monitored process that nobody flushes; older ones are dropped
STDERR_LAG_SECONDS = 0.25  # how old a stderr line is before it is handed over (see ProcessTree)
_REAP_POLL_SECONDS = 0.02


# ---------------------------------------------------------------------------------------------------------
# /proc helpers


def _proc_stat(pid: int) -> Optional[Tuple[str, int, int, int]]:
    """(state, ppid, pgrp, session) of ``pid``, or None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    try:
        return fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _all_pids() -> List[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def live_pids_in_group(pgid: int) -> List[int]:
    """Living (non-zombie) processes whose process group is ``pgid``."""
    found = []
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is not None and stat[2] == pgid and stat[0] not in ("Z", "X"):
            found.append(pid)
    return found


def live_pids_in_session(sid: int) -> List[int]:
    """Living (non-zombie) processes whose session is ``sid``."""
    found = []
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is not None and stat[3] == sid and stat[0] not in ("Z", "X"):
            found.append(pid)
    return found


def kill_session(sid: int, timeout_s: float = 5.0) -> List[int]:
    """SIGKILL every process of session ``sid`` (a machine that dies) until none is left; returns the pids
    that were still alive after ``timeout_s`` (empty when the session is gone)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = [pid for pid in live_pids_in_session(sid) if pid != os.getpid()]
        if not pids:
            return []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            return [pid for pid in pids if pid_alive(pid)]
        time.sleep(_REAP_POLL_SECONDS)


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to process group ``pgid``; False when the group has no member left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def wait_group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while live_pids_in_group(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_REAP_POLL_SECONDS)
    return True


# ---------------------------------------------------------------------------------------------------------
# command lines


def split_arguments(text: str) -> List[str]:
    """Split an argument string the way .NET's ``Process.Start`` does (Deadline passes plugins' argument
    strings to it): whitespace separates; double quotes group; ``\\"`` is a literal quote; 2n backslashes
    before a quote give n backslashes; backslashes elsewhere are literal; ``""`` inside quotes is a literal
    quote. Single quotes are ordinary characters (they do NOT group, unlike a POSIX shell)."""
    arguments: List[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        current: List[str] = []
        in_quotes = False
        while i < n:
            char = text[i]
            if char == "\\":
                start = i
                while i < n and text[i] == "\\":
                    i += 1
                count = i - start
                if i < n and text[i] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        i += 1
                else:
                    current.append("\\" * count)
                continue
            if char == '"':
                if in_quotes and i + 1 < n and text[i + 1] == '"':
                    current.append('"')
                    i += 2
                    continue
                in_quotes = not in_quotes
                i += 1
                continue
            if char in " \t\r\n" and not in_quotes:
                break
            current.append(char)
            i += 1
        arguments.append("".join(current))
    return arguments


# ---------------------------------------------------------------------------------------------------------
# a running process


def _own_group_kwargs() -> Dict[str, object]:
    if sys.version_info >= (3, 11):
        return {"process_group": 0}
    return {"preexec_fn": os.setpgrp}  # pragma: no cover (Python < 3.11)


def exit_status(returncode: int) -> int:
    """A shell-style exit status: a process killed by signal N exits 128 + N (Popen says -N)."""
    return 128 - returncode if returncode < 0 else returncode


class ProcessTree:
    """A started process (its own process group) whose stdout and stderr, two pipes, reader threads buffer
    until the owner takes them (:meth:`take_lines`).

    The two streams have no order between them (separate readers, as a .NET ``Process`` reads stdout and
    stderr with two asynchronous readers). The double takes the adversarial order: a take hands over the
    stdout lines read so far, then the stderr lines read at least ``STDERR_LAG_SECONDS`` ago, so a stderr line
    written just before a stdout line is handled after it. Once both pipes are closed everything left is
    handed over, stdout first.

    Stopping is a hard kill, as .NET's ``Process.Kill`` is on Unix (SIGKILL, no grace): :meth:`kill` kills
    the leader only, or its whole process group (``tree=True``: what ``UseProcessTree`` asks for)."""

    def __init__(self, argv: Sequence[str], *, cwd: Optional[str], env: Dict[str, str], label: str,
                 with_stdin: bool = False) -> None:
        self.label = label
        self.argv = list(argv)
        self.popen = subprocess.Popen(  # noqa: S603 (the plugin's own command)
            self.argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL, close_fds=True,
            **_own_group_kwargs())  # type: ignore[arg-type]
        self.pid = self.popen.pid
        self.pgid = self.popen.pid
        self.dropped_lines = 0
        self._stdout: Deque[str] = collections.deque()
        self._stderr: Deque[Tuple[float, str]] = collections.deque()  # (when read, line)
        self._cond = threading.Condition()
        self._open_streams = 2
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, False), name=f"stdout-{label}-{self.pid}",
                             daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, True), name=f"stderr-{label}-{self.pid}",
                             daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        log.debug("started %s: pid %d, %s", label, self.pid, self.argv)

    def _buffered(self) -> int:
        return len(self._stdout) + len(self._stderr)

    def _drop_oldest(self) -> None:
        (self._stdout or self._stderr).popleft()
        self.dropped_lines += 1

    def _stderr_due(self) -> bool:
        return bool(self._stderr) and (self._eof or time.monotonic() - self._stderr[0][0] >= STDERR_LAG_SECONDS)

    def _read(self, stream: Any, is_stderr: bool) -> None:
        assert stream is not None
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                with self._cond:
                    if self._buffered() >= MAX_BUFFERED_LINES:
                        self._drop_oldest()
                    if is_stderr:
                        self._stderr.append((time.monotonic(), line))
                    else:
                        self._stdout.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._open_streams -= 1
                self._cond.notify_all()

    @property
    def _eof(self) -> bool:
        return self._open_streams == 0

    # -- output --------------------------------------------------------------------------------------------

    def take_lines(self, timeout_s: float = 0.0) -> List[str]:
        """The lines to hand over now (see the class docstring), waiting up to ``timeout_s`` for one when
        none is buffered yet."""
        with self._cond:
            if not self._stdout and not self._stderr_due() and not self._eof and timeout_s > 0:
                self._cond.wait(timeout_s)
            lines = list(self._stdout)
            self._stdout.clear()
            while self._stderr_due():
                lines.append(self._stderr.popleft()[1])
            return lines

    @property
    def output_closed(self) -> bool:
        """True once both pipes reached end of file and every line was taken."""
        with self._cond:
            return self._eof and not self._buffered()

    def wait_output_closed(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def write_stdin(self, text: str) -> None:
        stdin = self.popen.stdin
        if stdin is None:
            raise RuntimeError(f"{self.label} was started without stdin")
        stdin.write((text + "\n").encode("utf-8"))
        stdin.flush()

    # -- state ---------------------------------------------------------------------------------------------

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout_s: Optional[float]) -> Optional[int]:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def exit_status(self) -> Optional[int]:
        code = self.popen.poll()
        return None if code is None else exit_status(code)

    def group_members(self) -> List[int]:
        return live_pids_in_group(self.pgid)

    def kill(self, *, tree: bool) -> List[int]:
        """SIGKILL the leader (``tree=False``) or its whole process group (``tree=True``), at once; reap the
        leader. Returns the processes of the group still alive afterwards: none with ``tree``; without it, the
        children the leader started, which outlive it."""
        if tree:
            signal_group(self.pgid, signal.SIGKILL)
        elif self.running:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait(5.0)
        if tree:
            wait_group_gone(self.pgid, 5.0)
            self.wait_output_closed(2.0)
        survivors = live_pids_in_group(self.pgid)
        if survivors and tree:
            log.warning("%s: processes %s survived SIGKILL of group %d", self.label, survivors, self.pgid)
        self._close_stdin()
        return survivors

    def _close_stdin(self) -> None:
        if self.popen.stdin is not None:
            try:
                self.popen.stdin.close()
            except OSError:
                pass

    def close(self) -> None:
        """Release the pipes of a process that has exited (after its output was read)."""
        self._close_stdin()
        if self.output_closed:
            for stream in (self.popen.stdout, self.popen.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass

    def __repr__(self) -> str:
        return f"ProcessTree({self.label!r}, pid={self.pid}, running={self.running})"
