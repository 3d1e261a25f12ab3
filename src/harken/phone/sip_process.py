"""SipProcess: the parent's handle on the SIP program (``python -m harken.phone.sip_program``).

It starts the program, waits for "ready" (or raises what "failed" said), passes every later
message to ``on_message``, and sends commands through a bounded queue so that a stuck SIP
program can never block the caller. When the program ends by itself (a PJSUA2 assertion,
SIGKILL), ``on_exit`` hears how; close() stops it: "shutdown", then SIGTERM, then SIGKILL,
bounded in time.

Threads: "harken-phone-sip-reader" reads the program's stdout and calls ``on_message`` /
``on_exit`` (keep them quick: the phone agent hops to its loop); "harken-phone-sip-writer"
writes queued commands to its stdin.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import PhoneError, ProtocolError, WorkerError
from ..worker import child_handle
from ..worker.protocol import Message, read_message, write_message
from .wire import check_phone_message

__all__ = ["SipProcess"]

logger = logging.getLogger(__name__)

_WHAT = "SIP program"
"""What the program is called in messages."""
_QUEUE = 4096
"""Commands waiting for the SIP program (~80 s of one call's audio in 20 ms pieces)."""


class SipProcess:
    """Runs the SIP program and moves messages in both directions.

    Args:
        settings: the "init" message's fields (see :mod:`harken.phone.wire`).
        on_message: called on the reader thread with each message after "ready".
        on_exit: called on the reader thread once if the program ends without close(),
            with a sentence saying how.
        python: the interpreter for the program; None means ``sys.executable``.
    """

    def __init__(self, settings: dict[str, Any], on_message: Callable[[Message], None],
                 on_exit: Callable[[str], None], *, python: str | None = None) -> None:
        self._settings = settings
        self._on_message = on_message
        self._on_exit = on_exit
        self._python = python
        self._proc: Any = None
        self._commands: queue.Queue[tuple[str, dict[str, Any], bytes] | None] = \
            queue.Queue(_QUEUE)
        self._reader: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: str | None = None
        self._closing = False
        self.address = ""
        """``host:port`` the program listens on, once started."""

    @property
    def pid(self) -> int | None:
        """The SIP program's process id while it runs."""
        return None if self._proc is None else int(self._proc.pid)

    def start(self, timeout: float = 15.0) -> None:
        """Start the program and wait until it listens.

        Raises:
            PhoneError: it could not listen (one sentence why), or did not start in time.
        """
        try:
            self._proc = child_handle.launch(self._python, "harken.phone.sip_program",
                                              _WHAT)
        except WorkerError as exc:
            raise PhoneError(str(exc)) from exc
        self._reader = threading.Thread(target=self._read, name="harken-phone-sip-reader",
                                        daemon=True)
        self._writer = threading.Thread(target=self._write, name="harken-phone-sip-writer",
                                        daemon=True)
        self._reader.start()
        self._writer.start()
        self.send("init", self._settings)
        if not self._ready.wait(timeout) or self._failure is not None:
            failure = self._failure or f"the SIP program did not start within {timeout} s"
            self.close(1.0)
            raise PhoneError(failure)

    def send(self, type: str, header: dict[str, Any], payload: bytes = b"") -> bool:
        """Queue a command; False if the program is gone or too far behind (dropped)."""
        if self._closing or self._proc is None:
            return False
        try:
            self._commands.put_nowait((type, header, payload))
        except queue.Full:
            logger.warning("the SIP program is not reading its commands; %s dropped", type)
            return False
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Stop the program (hangs up every call) and join the threads; idempotent."""
        deadline = time.monotonic() + timeout
        if self._proc is None:
            return
        if not self._closing:
            self._closing = True
            try:
                self._commands.put(("shutdown", {}, b""), timeout=0.2)
                self._commands.put(None, timeout=0.2)
            except queue.Full:
                pass
        proc = self._proc
        child = child_handle.Child(proc, gen=0, started_at=0.0, ready=True, what=_WHAT)
        child_handle.stop_child(child, deadline - 0.5, deadline)
        child_handle.close_pipes(proc)
        for thread in (self._writer, self._reader):
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.1, deadline - time.monotonic()))

    # ------------------------------------------------------------------ threads

    def _write(self) -> None:
        stdin = self._proc.stdin
        while True:
            item = self._commands.get()
            if item is None:
                break
            try:
                write_message(stdin, *item)
            except (OSError, ValueError):
                break  # the program is gone; the reader reports it
        try:
            stdin.close()
        except OSError:
            pass

    def _read(self) -> None:
        stdout = self._proc.stdout
        problem: BaseException | None = None
        try:
            while True:
                message = read_message(stdout)
                if message is None:
                    break
                check_phone_message(message)
                if message.type == "log":
                    child_handle.relay_log(message.header)
                elif message.type == "ready":
                    self.address = str(message.header["address"])
                    self._ready.set()
                elif message.type == "failed":
                    self._failure = str(message.header["message"])
                    self._ready.set()
                elif message.type == "shutdown_ack":
                    pass
                else:
                    self._on_message(message)
        except (ProtocolError, OSError, ValueError) as exc:
            problem = exc
        proc = self._proc
        how = child_handle.reap(child_handle.Child(proc, gen=0, started_at=0.0, what=_WHAT),
                                 problem) \
            if not self._closing else ""
        if not self._ready.is_set() or self._failure is not None:
            self._failure = self._failure or f"the SIP program ended before it listened ({how})"
            self._ready.set()
            return
        if not self._closing:
            self._closing = True
            try:
                self._commands.put_nowait(None)
            except queue.Full:
                pass
            self._on_exit(f"the SIP program ended unexpectedly ({how}); every call was lost")
