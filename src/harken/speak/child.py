"""The speech engine program: ``python -m harken.speak.child``.

A sibling of :mod:`harken.worker.child` on the same framed protocol
(:mod:`harken.worker.protocol`): started by
:class:`~harken.speak.host.SpeechEngineHost` as its own program (never through
multiprocessing), so it never imports the user's main module. File descriptor 1 is pointed
at stderr so that an engine that prints cannot corrupt the frames.

Threads: the main thread loads the engine and synthesises "synthesize" requests one at a
time, in order, sending each chunk as an "audio" message as soon as the engine yields it and
a "done" message at the end. The "harken-speak-child-reader" thread reads stdin, answers
"ping", queues requests and handles "cancel": a queued request is dropped, the one being
synthesised stops after its current chunk (no "done" is sent for a cancelled request).
Exit codes: 0 after "shutdown" or EOF on stdin, 2 on a bad init message, 3 when the engine
fails to load.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from typing import IO, Any

from ..errors import ProtocolError
from ..worker.child import _failure, _Sender, begin
from ..worker.protocol import Message, check_message, encode_audio, read_message

__all__ = ["main"]

logger = logging.getLogger(__name__)

_MAX_QUEUED = 4096


class _Queue:
    """Synthesis requests waiting for the main thread, and the cancelled ids."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: collections.deque[Message] = collections.deque()
        self._cancelled: set[int] = set()
        self.current: int | None = None
        self._closed = False

    def put(self, message: Message) -> None:
        with self._cond:
            while len(self._items) >= _MAX_QUEUED and not self._closed:
                self._cond.wait(0.5)  # backpressure: stop reading stdin for a while
            self._items.append(message)
            self._cond.notify_all()

    def cancel(self, request_id: int) -> None:
        with self._cond:
            for message in self._items:
                if message.header["id"] == request_id:
                    self._items.remove(message)
                    break
            else:
                if self.current == request_id:
                    self._cancelled.add(request_id)
            self._cond.notify_all()

    def is_cancelled(self, request_id: int) -> bool:
        with self._cond:
            return request_id in self._cancelled or self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self) -> Message | None:
        with self._cond:
            while not self._closed and not self._items:
                self._cond.wait()
            if self._closed:
                return None
            message = self._items.popleft()
            self.current = int(message.header["id"])
            self._cancelled.clear()
            self._cond.notify_all()
            return message


def _read_stdin(stdin: IO[bytes], sender: _Sender, queue: _Queue) -> None:
    try:
        while True:
            message = read_message(stdin)
            if message is None:
                return
            check_message(message, "synthesize", "cancel", "ping", "shutdown")
            if message.type == "ping":
                sender.send("pong", {"id": message.header["id"]})
            elif message.type == "cancel":
                queue.cancel(int(message.header["id"]))
            elif message.type == "synthesize":
                queue.put(message)
            else:
                return
    except (ProtocolError, OSError, ValueError) as exc:
        logger.error("speech engine program stops reading its requests: %s", exc)
    finally:
        queue.close()


def _serve(engine: Any, sender: _Sender, queue: _Queue) -> None:
    from .engines.base import to_float32

    while True:
        message = queue.get()
        if message is None:
            return
        request_id = int(message.header["id"])
        speed = float((message.header["options"] or {}).get("speed", 1.0))
        samples = 0
        try:
            for chunk in engine.synthesize(str(message.header["text"]), speed):
                if queue.is_cancelled(request_id):
                    break
                audio = to_float32(chunk)
                if audio.size:
                    samples += audio.size
                    sender.send("audio", {"id": request_id}, encode_audio(audio))
            else:
                sender.send("done", {"id": request_id, "samples": samples})
        except Exception as exc:
            logger.debug("request %d failed: %s", request_id, exc, exc_info=True)
            sender.send("failed", _failure(request_id, exc))


def main() -> int:
    """Run the speech engine program until "shutdown" or EOF; return the exit code."""
    begun = begin("speech engine program")
    if isinstance(begun, int):
        return begun
    stdin, sender, init = begun

    from .engines.base import create_synthesis_engine
    from .voices import VoiceSpec

    started = time.perf_counter()
    try:
        spec = VoiceSpec.from_dict(dict(init.header["engine"]))
        engine = create_synthesis_engine(spec)
        engine.load()
        rate = int(engine.sample_rate)
    except Exception as exc:
        sender.send("failed", _failure(None, exc))
        return 3
    sender.send("ready", {"info": {"engine": spec.engine, "voice": spec.voice,
                                   "sample_rate": rate, "pid": os.getpid(),
                                   "load_seconds": time.perf_counter() - started}})

    queue = _Queue()
    reader = threading.Thread(target=_read_stdin, args=(stdin, sender, queue),
                              name="harken-speak-child-reader", daemon=True)
    reader.start()
    try:
        _serve(engine, sender, queue)
    finally:
        try:
            engine.close()
        except Exception:
            logger.exception("engine.close() failed")
        sender.send("shutdown_ack", {})
        reader.join(timeout=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
