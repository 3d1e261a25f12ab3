"""SpeechEngineHost: one speech engine program, supervised, shared by any number of speakers.

``start()`` runs ``python -m harken.speak.child`` (never multiprocessing, so the user's main
module is never re-imported), sends it the voice and waits until the voice is loaded.
Requests (one sentence each) are served in order; each streams "audio" chunks back and ends
with "done". Many :class:`~harken.speak.speaker.Speaker` objects (phone calls, server
sessions) can share one host: pass ``host=`` to each, and start and close the host yourself::

    with SpeechEngineHost(engine="piper") as host:
        a = Speaker(host=host, on_audio=call_a.play).start()
        b = Speaker(host=host, on_audio=call_b.play).start()

Two threads, owned here and joined by ``close()``: "harken-speak-engine-reader" reads the
program's answers and calls the request's :class:`SynthesisListener` (so listeners run on
that thread and must be quick); "harken-speak-engine-watchdog" kills a program that sends
nothing for ``request_timeout_s`` while it holds sentences (a hang), which sends it down the
crash path. When the program dies (a crash, a SIGKILL, the watchdog) it is restarted
and every unanswered request is sent again, whole: its listener first gets ``on_restart``
so it can drop what it had not played yet. The request the program was working on when it
died is given up after ``max_attempts`` tries (``on_failed`` with
:class:`~harken.errors.WorkerCrashed`), and the host gives up after ``max_attempts`` crashes
in a row with no request done in between.

The program's lifecycle (start, ready, watchdog, restart, close) is
:class:`~harken.worker.supervisor.ChildSupervisor`'s, shared with the engine process; this
module adds the sentences: their queue, their listeners and what a restart does to them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..errors import EngineError, LifecycleError, WorkerCrashed
from ..worker.child_handle import Child
from ..worker.protocol import Message, decode_audio
from ..worker.supervisor import ChildSupervisor, Later, State
from .voices import VoiceSpec, resolve_voice

__all__ = ["SpeechEngineHost", "SynthesisListener"]

logger = logging.getLogger(__name__)

class SynthesisListener(Protocol):
    """Receives one request's audio; called on the host's reader thread."""

    def on_audio(self, request_id: int, audio: NDArray[np.float32]) -> None:
        """A chunk of the sentence (float32 mono at the host's ``sample_rate``)."""

    def on_done(self, request_id: int, samples: int) -> None:
        """The sentence is complete: ``samples`` in all since the last ``on_restart``."""

    def on_failed(self, request_id: int, error: BaseException) -> None:
        """The sentence failed for good (the engine raised, or it crashed too often)."""

    def on_restart(self, request_id: int) -> None:
        """The program died; the sentence is being synthesised again from its start."""


@dataclass(eq=False)
class _Request:
    text: str
    speed: float
    listener: SynthesisListener
    attempts: int = 1


class SpeechEngineHost(ChildSupervisor):
    """Runs one synthesis engine and voice in its own program (see the module docstring).

    Args:
        voice: the voice (None: the engine's default); see :mod:`harken.speak.voices`.
        engine: "piper", "espeak", "tone", "package.module:Class", or None for the best
            installed engine.
        options: engine options (JSON-serialisable keyword arguments of the engine).
        start_timeout_s: seconds the program may take to load the voice.
        request_timeout_s: seconds the program may stay silent while it holds sentences
            before it is considered hung, killed and restarted.
        max_attempts: how often a sentence is tried when the program dies while on it,
            and how many crashes in a row are tolerated.
        python: the interpreter to run the program with; defaults to ``sys.executable``.

    Raises:
        ConfigError: an unknown engine or voice (the message lists the installed voices),
            or a bad timeout or attempt count.
        BackendNotInstalled: the engine is not installed.
    """

    _PROGRAM = "harken.speak.child"
    _WHAT = "speech engine program"
    _THREAD_PREFIX = "harken-speak-engine"

    def __init__(self, voice: str | None = None, *, engine: str | None = None,
                 options: Mapping[str, Any] | None = None, start_timeout_s: float = 120.0,
                 request_timeout_s: float = 30.0, max_attempts: int = 3,
                 python: str | None = None) -> None:
        self.spec: VoiceSpec = resolve_voice(engine, voice, options)
        """The engine and voice the program loads."""
        super().__init__(start_timeout_s=start_timeout_s, request_timeout_s=request_timeout_s,
                         max_attempts=max_attempts, python=python)
        self._next_id = 0
        self._requests: dict[int, _Request] = {}

    # ------------------------------------------------------------------ public API

    @property
    def sample_rate(self) -> int:
        """The rate of the audio the voice produces, in Hz.

        Raises:
            LifecycleError: the host has not been started.
        """
        with self._cond:
            if "sample_rate" not in self._info:
                raise LifecycleError("the sample rate is known once the host has started")
            return int(self._info["sample_rate"])

    @property
    def info(self) -> dict[str, Any]:
        """What the program reported when ready: engine, voice, sample_rate, load_seconds."""
        with self._cond:
            return dict(self._info)

    def start(self) -> SpeechEngineHost:
        """Start the program and block until its voice is loaded; return self.

        Raises:
            LifecycleError: start() was already called.
            EngineError: the voice failed to load (``error_type`` keeps the original name).
            WorkerStartTimeout: not ready within ``start_timeout_s``.
            WorkerCrashed: the program exited before it was ready.
            WorkerError: the interpreter could not be started.
        """
        self._start()
        return self

    def submit(self, text: str, listener: SynthesisListener, *, speed: float = 1.0) -> int:
        """Queue one sentence; return its request id. Never waits for synthesis.

        Raises:
            LifecycleError: not started, or closed.
            WorkerError: the program failed for good (the error also went to the listeners).
        """
        with self._cond:
            self._require_running("submit")
            if not self._requests:
                self._last_progress = time.monotonic()  # the silence clock starts now
            self._next_id += 1
            request_id = self._next_id
            self._requests[request_id] = _Request(text, float(speed), listener)
            self._send_request(request_id)
            return request_id

    def cancel(self, request_id: int) -> None:
        """Forget a request: no listener call is made for it afterwards. Never blocks long.

        A queued sentence is dropped by the program; the one being synthesised stops after
        its current chunk. Unknown ids, and calls before start or after close, are ignored.
        """
        with self._cond:
            if self._requests.pop(request_id, None) is None:
                return
            self._send("cancel", {"id": request_id})

    def close(self, timeout: float = 2.0) -> None:
        """Stop the program and the reader; idempotent, bounded by about ``timeout`` s.

        Requests still pending get ``on_failed`` with a :class:`LifecycleError`.
        """
        super().close(timeout)

    # ------------------------------------------------------------------ supervisor hooks

    def _init_engine(self) -> dict[str, Any]:
        return self.spec.to_dict()

    def _send_request(self, request_id: int) -> None:
        request = self._requests[request_id]
        self._send("synthesize", {"id": request_id, "text": request.text,
                                  "options": {"speed": request.speed}})

    def _dispatch(self, child: Child, message: Message) -> None:
        with self._cond:
            self._last_progress = time.monotonic()  # any message is a sign of life
        super()._dispatch(child, message)

    def _answer(self, child: Child, message: Message) -> None:
        header = message.header
        kind = message.type
        if kind in ("audio", "done", "failed"):
            request_id = int(header["id"])
            with self._cond:
                if kind == "audio":
                    request = self._requests.get(request_id)
                else:
                    request = self._requests.pop(request_id, None)
                    self._crashes = 0
            if request is None:
                return  # cancelled
            if kind == "audio":
                self._call(request.listener.on_audio, request_id, decode_audio(message.payload))
            elif kind == "done":
                self._call(request.listener.on_done, request_id, int(header["samples"]))
            else:
                logger.debug("sentence %d failed:\n%s", request_id, header.get("traceback", ""))
                self._call(request.listener.on_failed, request_id,
                           EngineError(str(header["message"]), str(header["error_type"])))
        elif kind not in ("pong", "shutdown_ack"):
            logger.warning("unexpected %r message from the speech engine program", kind)

    def _hang_reason(self, child: Child, now: float) -> str | None:
        """A restarted program slow to load its voice, or one that holds sentences and has
        said nothing for too long (start() itself times out the first program).
        """
        if not child.ready:
            if self._state is State.RUNNING and now - child.started_at > self._start_timeout_s:
                return f"it did not load the voice within {self._start_timeout_s} s"
        elif self._requests and now - self._last_progress > self._request_timeout_s:
            return (f"it sent nothing for {now - self._last_progress:.1f} s while holding "
                    f"{len(self._requests)} sentence(s)")
        return None

    def _lost(self, child: Child, how: str, crash: WorkerCrashed) -> Later:
        """The sentence the program was on when it died counts one more try."""
        if not self._requests:
            return []
        head_id = next(iter(self._requests))
        head = self._requests[head_id]
        head.attempts += 1
        if head.attempts <= self._max_attempts:
            return []
        del self._requests[head_id]
        return [self._later(head.listener.on_failed, head_id, WorkerCrashed(
            f"the speech engine program died {self._max_attempts} times while "
            f"synthesising this sentence (last: {how})"))]

    def _resend(self) -> Later:
        """Every unanswered sentence goes to the new program whole; listeners hear first."""
        for request_id in self._requests:
            self._send_request(request_id)
        return [self._later(request.listener.on_restart, request_id)
                for request_id, request in self._requests.items()]

    def _drain(self, error: BaseException) -> Later:
        return self._fail_all(error)

    def _closing(self) -> Later:
        self._send("shutdown", {})
        return self._fail_all(LifecycleError("the speech engine host was closed"))

    def _fail_all(self, error: BaseException) -> Later:
        failed = [self._later(request.listener.on_failed, request_id, error)
                  for request_id, request in self._requests.items()]
        self._requests.clear()
        return failed
