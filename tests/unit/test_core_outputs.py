"""route_outputs: the one dispatch of the pipeline's outputs that every shell uses."""

from __future__ import annotations

from typing import Any

import numpy as np

from harken.core.outputs import OutputHandler, route_outputs
from harken.core.pipeline import CancelRequest, ConfirmRequest, FinalFailed
from harken.engine.base import TranscribeRequest
from harken.events import FinalTranscript, SpeechStarted


class Log:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_request(self, request: TranscribeRequest) -> None:
        self.calls.append(("request", request))

    def on_cancel(self, cancel: CancelRequest) -> None:
        self.calls.append(("cancel", cancel))

    def on_confirm(self, confirm: ConfirmRequest) -> None:
        self.calls.append(("confirm", confirm))

    def on_final_failed(self, failed: FinalFailed) -> None:
        self.calls.append(("failed", failed))

    def on_event(self, event: Any) -> None:
        self.calls.append(("event", event))


def test_each_kind_goes_to_its_handler_in_order() -> None:
    request = TranscribeRequest(3, 1, "final", np.zeros(160, np.float32), 0, 160)
    started = SpeechStarted(1, 0.5)
    final = FinalTranscript(1, "hi", 0.5, 1.0)
    cancel = CancelRequest(2)
    confirm = ConfirmRequest(3)
    failed = FinalFailed(request, RuntimeError("no"))
    log = Log()
    handler: OutputHandler = log
    route_outputs([started, request, cancel, confirm, final, failed], handler)
    assert log.calls == [("event", started), ("request", request), ("cancel", cancel),
                         ("confirm", confirm), ("event", final), ("failed", failed)]
    route_outputs([], handler)
    assert len(log.calls) == 6
