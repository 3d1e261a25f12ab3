"""The parent's handle on one engine child process, and what happens to it when it ends.

Launching ``python -m harken.worker`` with pipes, deciding when the watchdog must kill a
child (start timeout, hung request), stopping it (wait for its exit, then SIGTERM, then
SIGKILL), describing how it exited, relaying its log records, and the safety-net finalizer
for an EngineProcess nobody closed. Functions here run on whichever EngineProcess thread
calls them (the caller's, the reader's or the watchdog's); none starts a thread.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError, WorkerCrashed, WorkerError, WorkerStartTimeout
from .request_book import Pending

__all__ = ["Child", "Shared", "abandon", "close_pipes", "describe_exit", "hang_reason",
           "launch", "not_ready_error", "reap", "relay_log", "stop_child", "stop_process"]

logger = logging.getLogger(__name__)
child_logger = logging.getLogger("harken.worker.child")
"""The parent-side logger the child's records are relayed to (its level is sent at init)."""

_SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(eq=False)
class Child:
    """One started child process (a restart makes a new one, with the next ``gen``)."""

    proc: subprocess.Popen[bytes]
    gen: int
    started_at: float
    """``time.monotonic()`` seconds when it was launched."""
    ready: bool = False
    init_error: EngineError | None = None
    kill_reason: str | None = None
    """Why the watchdog killed it (start timeout or a hung request), if it did."""
    what: str = "engine process"
    """What the program is called in messages ("speech engine program", "SIP program")."""


@dataclass(eq=False)
class Shared:
    """What the safety-net finalizer needs, without a reference to the EngineProcess."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    abandoned: bool = False


def launch(python: str | None, module: str = "harken.worker",
           what: str = "engine process") -> subprocess.Popen[bytes]:
    """Start ``python -m <module>`` with pipes on stdin and stdout (stderr inherited).

    Args:
        python: the interpreter; None means ``sys.executable``.
        module: the program to run (the speech engine program is ``harken.speak.child``).
        what: what the program is called in errors ("speech engine program").

    Raises:
        WorkerError: there is no interpreter, or it could not be started.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC_DIR, env.get("PYTHONPATH", "")) if p)
    python = python or sys.executable
    if not python:
        raise WorkerError(f"cannot start the {what}: sys.executable is empty; "
                          "pass python= the path of a Python interpreter")
    try:
        return subprocess.Popen([python, "-m", module], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env)
    except OSError as exc:
        raise WorkerError(f"cannot start the {what} with {python!r}: {exc}") from exc


def hang_reason(child: Child, inflight: Sequence[Pending], *, now: float, last_progress: float,
                start_timeout_s: float, request_timeout_s: float) -> str | None:
    """Why the watchdog should kill ``child`` now (seconds from ``time.monotonic()``), or None.

    A child that is not ready has ``start_timeout_s``; a ready one holding requests must
    answer something within ``request_timeout_s`` plus twice the longest audio it holds.
    """
    if not child.ready:
        if now - child.started_at > start_timeout_s:
            return f"it did not become ready within {start_timeout_s} s"
        return None
    if not inflight:
        return None
    since = max(last_progress, min(p.sent_at for p in inflight))
    budget = request_timeout_s + 2 * max(p.request.duration for p in inflight)
    if now - since > budget:
        return (f"it answered nothing for {now - since:.1f} s while holding "
                f"{len(inflight)} request(s) (limit {budget:.1f} s)")
    return None


def stop_child(child: Child, soft_deadline: float, deadline: float) -> None:
    """Wait for a ready child to exit until ``soft_deadline``, then SIGTERM, then SIGKILL.

    Deadlines are ``time.monotonic()`` seconds; the whole is bounded by ``deadline`` plus
    about a second.
    """
    proc = child.proc
    if child.ready:
        try:
            proc.wait(max(0.0, soft_deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    stop_process(proc, deadline - 0.3 - time.monotonic(), child.what)


def stop_process(proc: subprocess.Popen[Any], grace_s: float,
                 name: str = "engine process") -> None:
    """SIGTERM ``proc``, wait up to ``grace_s`` seconds (at least 0.05), then SIGKILL and
    wait up to 1 s more; a process that has exited already is left alone.

    Args:
        proc: the process to stop.
        grace_s: how long it has to exit after SIGTERM, in s.
        name: what it is, for the log ("baresip").
    """
    if proc.poll() is not None:
        return
    logger.debug("terminating %s %d", name, proc.pid)
    proc.terminate()
    try:
        proc.wait(max(0.05, grace_s))
    except subprocess.TimeoutExpired:
        logger.warning("%s %d ignored SIGTERM; killing it", name, proc.pid)
        proc.kill()
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:  # pragma: no cover
            logger.error("%s %d did not die after SIGKILL", name, proc.pid)


def reap(child: Child, problem: BaseException | None) -> str:
    """Wait for a child whose stdout ended, and say how it ended.

    Blocks up to about 2 s (then kills it). A child that sent garbage (``problem``) and
    still runs is killed first.

    Returns:
        How it ended, e.g. "exit code 1, after it sent a malformed message: ...".
    """
    proc = child.proc
    if problem is not None and proc.poll() is None:
        logger.error("%s %d sent garbage (%s); killing it", child.what, proc.pid, problem)
        proc.kill()
    try:
        proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    how = describe_exit(proc.returncode)
    if child.kill_reason is not None:
        how = f"{how}, after harken killed it because {child.kill_reason}"
    elif problem is not None:
        how = f"{how}, after it sent a malformed message: {problem}"
    return how


def not_ready_error(child: Child, how: str, start_timeout_s: float) -> BaseException:
    """The error for a child that ended before it was ready (``how``: see :func:`reap`)."""
    if child.init_error is not None:
        return child.init_error
    if child.kill_reason is not None and not child.ready:
        return WorkerStartTimeout(f"the {child.what} did not become ready within "
                                  f"{start_timeout_s} s and was killed")
    return WorkerCrashed(f"the {child.what} exited before it was ready ({how}); "
                         "its stderr above shows why")


def close_pipes(proc: subprocess.Popen[bytes]) -> None:
    """Close the parent's ends of a child's stdin and stdout, ignoring errors."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def abandon(shared: Shared) -> None:
    """weakref.finalize callback: kill children of an EngineProcess nobody closed."""
    shared.abandoned = True
    alive = [p for p in shared.procs if p.poll() is None]
    for proc in alive:
        proc.kill()
    for proc in shared.procs:
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait
            pass
        close_pipes(proc)
    if alive:
        warnings.warn("an EngineProcess was not closed; its engine process was killed. "
                      "Call close() or use it as a context manager.", ResourceWarning,
                      stacklevel=1)


def describe_exit(returncode: int | None) -> str:
    """Say how a process ended, e.g. "exit code 1" or "killed by signal SIGKILL"."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def relay_log(header: dict[str, Any]) -> None:
    """Log a "log" message from the child under ``harken.worker.child[.<its logger>]``."""
    name = str(header["name"])
    if name.startswith("harken."):
        name = name[len("harken."):]
    target = child_logger if name in ("", "root", "worker.child") else \
        logging.getLogger(f"harken.worker.child.{name}")
    levelno = int(header["levelno"])
    if target.isEnabledFor(levelno):
        target.log(levelno, "%s", header["message"])
