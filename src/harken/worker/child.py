"""The engine process program: ``python -m harken.worker``.

Started by :class:`harken.worker.process.EngineProcess` as its own program (never through
multiprocessing), so it never imports the user's main module. It speaks the frames of
:mod:`harken.worker.protocol` on its stdin and on the stdout it had at start; file
descriptor 1 is pointed at stderr so that a library which prints cannot corrupt the frames.
Its life (init, load, ready, the reader thread, shutdown) is :func:`run`, which the
speech engine program (:mod:`harken.speak.child`) shares.

Threads: the main thread loads the engine and serves "transcribe" requests, finals before
partials (of queued partials only the newest is kept; older ones are answered "failed" with
error_type "Superseded"); where the engine can stop a pass after its encoder, a partial
being transcribed when a final arrives stops there (answered "failed" with error_type
"PartialInterrupted"); "cheap" finals queued together go to the engine's
``transcribe_batch`` at once where it has one (up to its ``max_batch``), each answered on
its own. The "harken-child-reader" thread reads stdin, answers "ping" at
once, queues requests and removes cancelled ones from the queue (answered "failed" with
error_type "Cancelled"; one already being transcribed stops after its encoder, answered
"Cancelled", where the engine can, else runs to the end and is answered as usual). Writes
are serialised by a lock. Exit codes: 0 after "shutdown" or
EOF on stdin, 2 on a protocol error, 3 when the engine fails to load.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any, Protocol, TypeVar

from ..engine.base import DecodeHints, PassInterrupted
from ..errors import ProtocolError
from .protocol import Message, check_message, decode_audio, read_message, write_message

__all__ = ["Requests", "begin", "main", "run"]

logger = logging.getLogger(__name__)

_MAX_QUEUED_FINALS = 256
_R = TypeVar("_R", bound="Requests")


class _Sender:
    """Writes frames to the parent, one at a time; gives up quietly once the pipe is gone."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = False

    def send(self, type: str, header: dict[str, Any], payload: bytes = b"") -> bool:
        with self._lock:
            if self.broken:
                return False
            try:
                write_message(self._stream, type, header, payload)
            except (OSError, ValueError):  # parent gone (EPIPE) or stream closed
                self.broken = True
                return False
            return True


class _PipeLogHandler(logging.Handler):
    """Sends the child's log records to the parent as "log" messages."""

    def __init__(self, sender: _Sender, level: int) -> None:
        super().__init__(level)
        self._sender = sender
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sender.send("log", {"name": record.name, "levelno": record.levelno,
                                      "message": self.format(record)})
        except Exception:  # never let logging break the engine
            self.handleError(record)


class _Inbox:
    """Requests waiting for the main thread: finals in order, plus the newest partial."""

    def __init__(self, sender: _Sender) -> None:
        self._sender = sender
        self._cond = threading.Condition()
        self._finals: collections.deque[Message] = collections.deque()
        self._partial: Message | None = None
        self._closed = False
        self._withdrawn: set[int] = set()
        """Ids cancelled while not queued (being transcribed, or in a batch's rest)."""
        self._current: int | None = None
        """The id of the lone request the last :meth:`get` returned (None: a batch)."""

    def put(self, message: Message) -> None:
        superseded: Message | None = None
        with self._cond:
            if message.header.get("kind") == "partial":
                superseded, self._partial = self._partial, message
            else:
                while len(self._finals) >= _MAX_QUEUED_FINALS and not self._closed:
                    self._cond.wait(0.5)  # backpressure: stop reading stdin for a while
                self._finals.append(message)
            self._cond.notify_all()
        if superseded is not None:
            self._sender.send("failed", {"id": superseded.header["id"],
                                         "error_type": "Superseded",
                                         "message": "a newer partial replaced this one",
                                         "traceback": ""})

    def cancel(self, request_id: int) -> None:
        """Remove a queued request and answer it "Cancelled"; ignore an id not queued."""
        found = False
        with self._cond:
            if self._partial is not None and self._partial.header["id"] == request_id:
                self._partial = None
                found = True
            else:
                for message in self._finals:
                    if message.header["id"] == request_id:
                        self._finals.remove(message)
                        found = True
                        break
            if not found:
                self._withdrawn.add(request_id)
            self._cond.notify_all()
        if found:
            self._sender.send("failed", {"id": request_id, "error_type": "Cancelled",
                                         "message": "the request was cancelled",
                                         "traceback": ""})

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, batch: int = 1) -> list[Message]:
        """Block until a request is waiting; empty once closed (pending requests are dropped).

        Returns the next request, or with ``batch`` > 1 and a "cheap" final first, that
        final and the cheap finals queued right behind it (``batch`` at most), for the
        engine's ``transcribe_batch``.
        """
        with self._cond:
            while not self._closed and not self._finals and self._partial is None:
                self._cond.wait()
            if self._closed:
                return []
            self._withdrawn.clear()
            taken: list[Message] = []
            if self._finals:
                taken.append(self._finals.popleft())
                if _cheap(taken[0]):
                    while self._finals and len(taken) < batch and _cheap(self._finals[0]):
                        taken.append(self._finals.popleft())
            else:
                assert self._partial is not None
                taken, self._partial = [self._partial], None
            self._current = int(taken[0].header["id"]) if len(taken) == 1 else None
            self._cond.notify_all()
            return taken

    def should_stop(self, kind: str) -> bool:
        """Whether the lone request taken by the last :meth:`get` may stop now: it was
        cancelled since, or it is a partial and a final is waiting.
        """
        with self._cond:  # a Condition's lock is reentrant: withdrawn() takes it again
            current = self._current
            return (current is not None and self.withdrawn(current)) or \
                (kind == "partial" and bool(self._finals))

    def withdrawn(self, request_id: int) -> bool:
        """Whether ``request_id``, taken by the last :meth:`get`, was cancelled since."""
        with self._cond:
            return request_id in self._withdrawn


def _cheap(message: Message) -> bool:
    """Whether a queued request is a final with the "cheap" quality (load shedding)."""
    hints = message.header.get("hints") or {}
    return message.header.get("kind") == "final" and hints.get("quality") == "cheap"


class Requests(Protocol):
    """Where a program's reader thread puts requests for its main thread."""

    def put(self, message: Message) -> None:
        """Queue a request (may block a while: backpressure)."""

    def cancel(self, request_id: int) -> None:
        """Drop a request, or stop the one being served where the program can."""

    def close(self) -> None:
        """No more requests: the main thread stops once it sees this."""


def _read_stdin(stdin: IO[bytes], sender: _Sender, requests: Requests, request_type: str,
                program: str) -> None:
    """Reader thread: queue requests, answer pings, close the queue on shutdown or EOF."""
    try:
        while True:
            message = read_message(stdin)
            if message is None:
                logger.debug("stdin closed: the parent has gone or closed the pipe")
                return
            check_message(message, request_type, "cancel", "ping", "shutdown")
            if message.type == "ping":
                sender.send("pong", {"id": message.header["id"]})
            elif message.type == "cancel":
                requests.cancel(int(message.header["id"]))
            elif message.type == request_type:
                requests.put(message)
            else:
                return
    except (ProtocolError, OSError, ValueError) as exc:
        logger.error("%s stops reading its requests: %s", program, exc)
    finally:
        requests.close()


def _failure(request_id: int | None, exc: BaseException) -> dict[str, Any]:
    return {"id": request_id, "error_type": type(exc).__name__, "message": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc,
                                                            exc.__traceback__))}


def _serve(engine: Any, sender: _Sender, inbox: _Inbox) -> None:
    batch = int(getattr(engine, "max_batch", 1)) if hasattr(engine, "transcribe_batch") else 1
    stop_check = getattr(engine, "set_stop_check", None)
    if callable(stop_check):
        stop_check(inbox.should_stop)  # finals never wait for a partial's decode
    while True:
        messages = inbox.get(batch)
        if not messages:
            return
        batched = len(messages) > 1
        if batched:
            messages = _serve_batch(engine, sender, messages)
        for message in messages:  # with a batch: those it left to be transcribed alone
            if batched and inbox.withdrawn(int(message.header["id"])):
                sender.send("failed", {"id": message.header["id"], "error_type": "Cancelled",
                                       "message": "the request was cancelled",
                                       "traceback": ""})
                continue
            _serve_one(engine, sender, message, inbox)


def _serve_one(engine: Any, sender: _Sender, message: Message, inbox: _Inbox) -> None:
    request_id = int(message.header["id"])
    try:
        audio = decode_audio(message.payload)
        started = time.perf_counter()
        hints = DecodeHints.from_dict(message.header["hints"] or {})
        output = engine.transcribe(audio, kind=message.header["kind"], hints=hints)
        elapsed = time.perf_counter() - started
    except PassInterrupted as exc:  # expected: no traceback to format, nothing to log
        cancelled = inbox.withdrawn(request_id)
        sender.send("failed", {"id": request_id,
                               "error_type": "Cancelled" if cancelled else "PartialInterrupted",
                               "message": str(exc), "traceback": ""})
        return
    except Exception as exc:
        logger.debug("request %d failed: %s", request_id, exc, exc_info=True)
        sender.send("failed", _failure(request_id, exc))
        return
    sender.send("result", {"id": request_id, "output": output.to_dict(),
                           "compute_seconds": elapsed})


def _serve_batch(engine: Any, sender: _Sender, messages: list[Message]) -> list[Message]:
    """Cheap finals queued together: one ``engine.transcribe_batch`` call, each of its
    answers sent at once (with an equal share of the batch's time); returns the requests it
    left to transcribe alone (see ``FasterWhisperEngine.transcribe_batch``).
    """
    try:
        items = [(decode_audio(m.payload), DecodeHints.from_dict(m.header["hints"] or {}))
                 for m in messages]
    except Exception:  # a bad request: each alone says which
        return messages
    started = time.perf_counter()
    logger.debug("transcribing %d cheap finals as one batch", len(items))
    try:
        outputs = engine.transcribe_batch(items)
    except Exception as exc:
        logger.debug("a batch of %d failed: %s", len(items), exc, exc_info=True)
        return messages
    done = [output for output in outputs if output is not None]
    share = (time.perf_counter() - started) / max(1, len(done))
    rest = []
    for message, output in zip(messages, outputs, strict=True):
        if output is None:
            rest.append(message)
        else:
            sender.send("result", {"id": message.header["id"], "output": output.to_dict(),
                                   "compute_seconds": share})
    return rest


def begin(program: str) -> tuple[IO[bytes], _Sender, Message] | int:
    """Set up a program that speaks the framed protocol on its stdin and stdout.

    Keeps the real stdout for frames (file descriptor 1 then points at stderr), ignores
    SIGINT (the parent coordinates shutdown), reads "init" and sends the root logger's
    records to the parent at the level it asks for. Shared by this engine process and the
    speech engine program (:mod:`harken.speak.child`).

    Args:
        program: the program's name for the error message.

    Returns:
        ``(stdin, sender, init)``, or an exit code: 0 when stdin ended before "init", 2 when
        "init" was malformed.
    """
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed from now on goes to stderr
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent coordinates shutdown
    stdin = sys.stdin.buffer
    sender = _Sender(os.fdopen(protocol_fd, "wb"))
    try:
        init = read_message(stdin)
        if init is None:
            return 0
        check_message(init, "init")
    except (ProtocolError, OSError) as exc:
        sys.stderr.write(f"harken {program}: bad init message: {exc}\n")
        return 2
    root = logging.getLogger()
    level = int(init.header.get("log_level", logging.WARNING))
    root.addHandler(_PipeLogHandler(sender, level))
    root.setLevel(level)
    return stdin, sender, init


def run(program: str, *, load: Callable[[Message], tuple[Any, dict[str, Any]]],
        requests: Callable[[_Sender], _R], serve: Callable[[Any, _Sender, _R], None],
        request_type: str, reader_name: str) -> int:
    """Run a child program until "shutdown" or EOF; return its exit code.

    The life both child programs share: :func:`begin`, load, "ready" (with ``load_seconds``
    and ``pid`` added), a reader thread feeding the requests while ``serve`` runs on this
    thread, then ``engine.close()`` and "shutdown_ack". A load that raises is sent as
    "failed" with id None (exit code 3).

    Args:
        program: the program's name for messages ("engine process").
        load: builds and loads the engine from "init"; returns it and what "ready" reports.
        requests: makes the queue the reader fills, given the sender.
        serve: ``(engine, sender, requests)``: serves requests until the queue closes.
        request_type: the message type of a request ("transcribe").
        reader_name: the reader thread's name.
    """
    begun = begin(program)
    if isinstance(begun, int):
        return begun
    stdin, sender, init = begun
    started = time.perf_counter()
    try:
        engine, info = load(init)
    except Exception as exc:
        sender.send("failed", _failure(None, exc))
        return 3
    info["load_seconds"] = time.perf_counter() - started
    info["pid"] = os.getpid()
    sender.send("ready", {"info": info})

    queue = requests(sender)
    reader = threading.Thread(target=_read_stdin,
                              args=(stdin, sender, queue, request_type, program),
                              name=reader_name, daemon=True)
    reader.start()
    try:
        serve(engine, sender, queue)
    finally:
        try:
            engine.close()
        except Exception:
            logger.exception("engine.close() failed")
        sender.send("shutdown_ack", {})
        reader.join(timeout=1.0)
    return 0


def _load(init: Message) -> tuple[Any, dict[str, Any]]:
    """Build and load the engine "init" names; return it and what "ready" reports."""
    from ..config import EngineConfig
    from ..engine.registry import create_engine

    config = EngineConfig.from_dict(dict(init.header["engine"]))
    engine = create_engine(config)
    engine.load()
    info: dict[str, Any] = {"engine": config.engine, "model": config.model,
                            "device": config.device, "compute_type": config.compute_type}
    describe = getattr(engine, "info", None)
    if callable(describe):
        info.update(describe())
    return engine, info


def main() -> int:
    """Run the engine process until "shutdown" or EOF; return the exit code."""
    return run("engine process", load=_load, requests=_Inbox, serve=_serve,
               request_type="transcribe", reader_name="harken-child-reader")
