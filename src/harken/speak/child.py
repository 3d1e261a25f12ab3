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
import sys
import threading
from typing import Any

from ..worker.child import _failure, _Sender, run
from ..worker.protocol import Message, encode_audio

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


def _load(init: Message) -> tuple[Any, dict[str, Any]]:
    """Load the voice "init" names; return the engine and what "ready" reports."""
    from .engines.base import create_synthesis_engine
    from .voices import VoiceSpec

    spec = VoiceSpec.from_dict(dict(init.header["engine"]))
    engine = create_synthesis_engine(spec)
    engine.load()
    return engine, {"engine": spec.engine, "voice": spec.voice,
                    "sample_rate": int(engine.sample_rate)}


def main() -> int:
    """Run the speech engine program until "shutdown" or EOF; return the exit code."""
    return run("speech engine program", load=_load, requests=lambda sender: _Queue(),
               serve=_serve, request_type="synthesize",
               reader_name="harken-speak-child-reader")


if __name__ == "__main__":
    sys.exit(main())
