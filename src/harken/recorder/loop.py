"""The work of the recorder's "harken-pipeline" thread: inbox in, events and requests out.

:class:`PipelineLoop` drains the recorder's inbox: audio goes through the pure
:class:`~harken.core.pipeline.SpeechPipeline`, commands and engine answers are applied to it,
and what comes out is routed: requests to the engine process (never waiting for it), events
to the recorder's dispatcher, finals to the recorder's result queue. It keeps the
bookkeeping that only this thread writes: requests awaiting an answer, pause, end of stream,
position. Runs on the "harken-pipeline" thread, which the Recorder starts and joins; only
the ``post_*`` methods run elsewhere (the engine's reader thread), and they only queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.outputs import route_outputs
from ..core.pipeline import CancelRequest, ConfirmRequest, FinalFailed
from ..engine.base import EngineOutput, TranscribeRequest
from ..errors import LifecycleError
from ..events import ErrorEvent, Event, FinalTranscript
from .inbox import Inbox

if TYPE_CHECKING:
    from ..core.pipeline import Output, SpeechPipeline
    from ..worker.process import EngineProcess

__all__ = ["PipelineLoop"]

_LOG = logging.getLogger(__name__)

_FILE_MAX_PENDING = 2  # finals in flight before a file source is held back


class PipelineLoop:
    """Runs the pipeline thread's loop for a :class:`~harken.recorder.Recorder`.

    Args:
        inbox: where audio, commands and engine answers arrive.
        stop: set by the recorder to end :meth:`run`.
        idle: notified whenever the inbox may have run empty.
        emit: hands an event to the dispatcher.
        deliver_final: queues a final (or the error that replaced it) for ``next_final()``.
        fail: reports a fatal error ``(exc, where)``.
    """

    def __init__(self, inbox: Inbox, *, stop: threading.Event, idle: threading.Condition,
                 emit: Callable[[Event], None],
                 deliver_final: Callable[[FinalTranscript | BaseException], None],
                 fail: Callable[[BaseException, str], None]) -> None:
        self._inbox = inbox
        self._stop = stop
        self._idle = idle
        self._emit = emit
        self._deliver_final = deliver_final
        self._fail = fail
        self._paused = False
        self._engine: EngineProcess | None = None
        self.requests: dict[int, TranscribeRequest] = {}
        """Requests sent to the engine and not yet answered, by request id."""
        self.ended = False
        """The source reported the end of its stream."""
        self.position = 0
        """Samples (16 kHz) the pipeline has processed."""
        self.finals = 0
        """Final transcripts delivered so far."""

    # Engine callbacks: run on the engine's reader thread; hand over to the pipeline thread.

    def post_result(self, request: TranscribeRequest, output: EngineOutput,
                    compute_seconds: float, attempts: int) -> None:
        """Queue an engine answer for the pipeline (``EngineProcess`` ``on_result``)."""
        self._inbox.put_control(("result", request, output, compute_seconds, attempts))

    def post_failed(self, request: TranscribeRequest, exc: BaseException) -> None:
        """Queue a request that failed for good (``EngineProcess`` ``on_failed``)."""
        self._inbox.put_control(("failed", request, exc))

    def post_error(self, exc: BaseException, fatal: bool) -> None:
        """Queue a problem with the engine process (``EngineProcess`` ``on_error``)."""
        self._inbox.put_control(("error", exc, fatal, "engine"))

    def run(self, pipeline: SpeechPipeline, engine: EngineProcess, realtime: bool) -> None:
        """The thread's target: loop until ``stop`` is set; errors become fatal ErrorEvents.

        Args:
            pipeline: the started recorder's pipeline.
            engine: the running engine process.
            realtime: False for a file source, which is held back while finals pile up.
        """
        self._engine = engine
        try:
            self._loop(pipeline, realtime)
        except BaseException as exc:  # never lose an error in a thread
            _LOG.exception("pipeline thread failed")
            self._fail(exc, "pipeline")

    def _loop(self, pipeline: SpeechPipeline, realtime: bool) -> None:
        while not self._stop.is_set():
            hold_back = not realtime and len(self.requests) >= _FILE_MAX_PENDING
            item = self._inbox.get(0.1, allow_audio=not hold_back)
            if item is None:
                self._notify_idle()
                continue
            try:
                if isinstance(item, np.ndarray):
                    if self._paused:
                        continue
                    outputs = pipeline.feed(item)
                    self.position = pipeline.position
                    self._route(outputs)
                else:
                    self._handle_control(item, pipeline)
            finally:
                self._inbox.task_done()
            if self._inbox.unfinished == 0:
                self._notify_idle()

    def _notify_idle(self) -> None:
        with self._idle:
            self._idle.notify_all()

    def _handle_control(self, item: tuple[Any, ...], pipeline: SpeechPipeline) -> None:
        kind = item[0]
        if kind == "result":
            _, request, output, compute_seconds, attempts = item
            if self.requests.pop(request.request_id, None) is None:
                return  # cancelled
            self._route(pipeline.on_result(request, output, compute_seconds, attempts))
        elif kind == "failed":
            _, request, exc = item
            if self.requests.pop(request.request_id, None) is None:
                return
            self._route(pipeline.on_failed(request, exc))
        elif kind == "error":
            _, exc, fatal, where = item
            if fatal:
                self._fail(exc, where)
            else:
                self._emit(ErrorEvent(exc, fatal=False, where=where))
        elif kind == "pause":
            self._paused = True
            self._route(pipeline.flush())
        elif kind == "resume":
            self._paused = False
        elif kind in ("flush", "end"):
            self._route(pipeline.flush())
            self.position = pipeline.position
            if kind == "end":
                self.ended = True
        elif kind == "force_start":
            self._route(pipeline.force_start())
        elif kind == "force_end":
            self._route(pipeline.force_end())
        elif kind == "wake_up":
            pipeline.wake_up()

    def _route(self, outputs: list[Output]) -> None:
        route_outputs(outputs, self)

    # The pipeline's outputs (route_outputs): run on the pipeline thread.

    def on_request(self, request: TranscribeRequest) -> None:
        """Send ``request`` to the engine and wait for its answer."""
        if request.kind == "partial":
            # The engine replaces a queued partial by a newer one without answering
            # it: stop waiting for older partials.
            for stale in [i for i, r in self.requests.items() if r.kind == "partial"]:
                del self.requests[stale]
        self.requests[request.request_id] = request
        if self._engine is None:  # pragma: no cover - run() sets it before any output
            raise LifecycleError("the pipeline loop routes outputs only inside run()")
        self._engine.submit(request)

    def on_cancel(self, cancel: CancelRequest) -> None:
        """Withdraw a stale speculative final from the engine."""
        if self.requests.pop(cancel.request_id, None) is not None and self._engine is not None:
            self._engine.cancel(cancel.request_id)

    def on_confirm(self, confirm: ConfirmRequest) -> None:
        """A speculative final stands: nothing to do (the engine holds no final back)."""

    def on_final_failed(self, failed: FinalFailed) -> None:
        """An utterance the engine could not transcribe: its error takes the final's place."""
        _LOG.error("utterance %d could not be transcribed: %s",
                   failed.request.utterance_id, failed.error)
        self._deliver_final(failed.error)
        self._emit(ErrorEvent(failed.error, fatal=False, where="engine"))

    def on_event(self, event: Event) -> None:
        """Hand an event to the dispatcher (a final also to ``next_final()``)."""
        if isinstance(event, FinalTranscript):
            self.finals += 1
            self._deliver_final(event)
        self._emit(event)
