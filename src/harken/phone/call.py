"""PhoneCall: one call, a recorder and a voice joined at the SIP program's media port.

The caller's audio (8 kHz PCM, 20 ms at a time) goes into a
:class:`~harken.server.session.StreamSession` on the agent's shared engine host, exactly as
a server client's does. Each final is a turn: the user's ``on_turn`` answers it, the answer
is cut into sentences, each sentence is synthesised by the agent's voice and its audio is
queued in the SIP program, which plays it into the call at real time.

Barge-in: when the caller starts speaking (the VAD's confirmed onset, ``start_ms`` of
speech) while the agent's audio is playing, the reply is cancelled and the SIP program
drops its queued audio ("clear"). To stop sooner than the VAD can confirm, 60 ms of loud
caller audio already pause the agent's audio ("pause": silence, the queue kept); if the
VAD does not confirm speech within 400 ms, it plays on. The "cleared" answer says how
many samples had been played, and
the sentences' sample spans give what the caller heard (:attr:`PhoneCall.interrupted`,
``on_barge_in``). The agent's own voice never reaches the recognizer: the caller's and
the agent's audio are separate streams on SIP; a caller's phone that echoes the agent
(speakerphone) is guarded by ``barge_in_min_ms`` and by dropping finals that repeat what
the agent was saying (:func:`_echoes`).

Threads: everything here runs on the agent's event loop, except the public methods
(:meth:`say`, :meth:`hangup`, :meth:`transfer`), which hop to it and may be called from
any thread, hooks included.

It is one piece (over the ~400-line guide) because turn-taking and barge-in read and move
the same per-call state (what was sent, what was played, the reply being made, the pause);
the SIP program, the recognizer session, the voice and the hooks are modules of their own.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import RealtimeConfig, VadConfig
from ..engine.base import NO_WORDS
from ..errors import PhoneError
from ..events import (
    ErrorEvent,
    Event,
    FinalPreview,
    FinalTranscript,
    PartialTranscript,
    SpeechEnded,
    SpeechStarted,
)
from ..server.engine_host import EngineHost
from ..server.session import StreamSession
from ..server.vads import VadFactory
from ..speak.cutter import TextCutter
from .hooks import Workers, reply_pieces
from .reply_audio import JOIN_KEEP, collect, drain, first_pieces, lead_in, quiet_tail
from .voice import PhoneVoice
from .wire import SAMPLE_RATE, check_sip_uri

__all__ = ["CallContext", "PhoneCall", "PhoneHooks"]

logger = logging.getLogger("harken.phone")

_DRAIN_S = 10.0
"""Seconds a call's last final may take after the caller hangs up."""
_GATE_POWER = (32768.0 * 10 ** (-40 / 20)) ** 2
"""Mean square of a 20 ms int16 frame above which it is loud (-40 dBFS)."""
_GATE_FRAMES = 3
"""Loud frames (60 ms) that pause the agent's audio until the VAD decides."""
_HOLD_FRAMES = 20
"""Frames (400 ms) the audio stays paused waiting for the VAD's confirmed onset."""


@dataclass(frozen=True)
class PhoneHooks:
    """The user's functions (each may be None). All are called on hook threads."""

    on_turn: Callable[..., Any] | None = None
    on_partial: Callable[..., Any] | None = None
    on_call: Callable[..., Any] | None = None
    on_call_start: Callable[..., Any] | None = None
    on_call_end: Callable[..., Any] | None = None
    on_dtmf: Callable[..., Any] | None = None
    on_barge_in: Callable[..., Any] | None = None
    on_error: Callable[..., Any] | None = None


@dataclass(eq=False)
class CallContext:
    """What every call of one agent shares (loop-only state)."""

    loop: asyncio.AbstractEventLoop
    send: Callable[..., bool]
    """SipProcess.send(type, header, payload)."""
    host: EngineHost
    vads: VadFactory
    vad_config: VadConfig
    realtime: RealtimeConfig
    voice: PhoneVoice
    hooks: PhoneHooks
    events: Workers
    turns: Workers
    report: Callable[[BaseException, PhoneCall | None], None]
    barge_in: bool = True
    barge_in_min_ms: int = 0


@dataclass
class _Sentence:
    text: str
    start: int
    """First sample of it in the call's outgoing audio (8 kHz samples since the call began)."""
    end: int


@dataclass
class _Reply:
    text: list[str] = field(default_factory=list)
    sentences: list[_Sentence] = field(default_factory=list)
    gate: _Gate | None = None
    """Set for a reply started on a preview: its audio waits for the final."""
    index: int | None = None
    """Its place in :attr:`PhoneCall.replies`, once it is said."""


class _Gate:
    """A reply started on a final preview: released when the final confirms the text."""

    def __init__(self, utterance_id: int, text: str, stages: _Stages) -> None:
        self.utterance_id = utterance_id
        self.text = text
        self.stages = stages
        self.dropped = False
        self._event = asyncio.Event()

    @property
    def released(self) -> bool:
        return self._event.is_set()

    def release(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


class PhoneCall:
    """One phone call. Made by the agent; users get it in their hooks.

    Attributes:
        id: the agent's number for this call.
        remote_uri: the caller (``"Alice" <sip:alice@host>``).
        local_uri: whom they called.
        turns: the caller's finals so far, in order.
        replies: the text of every reply the agent started, in order.
        interrupted: what the caller heard of the last reply they interrupted, or None.
        state: "ringing", "active" or "ended".
        end_reason: the SIP status line that ended the call ("200 Normal call clearing").
        transferred: the final status of the last :meth:`transfer`, or None.
    """

    def __init__(self, ctx: CallContext, call_id: int, remote_uri: str, local_uri: str) -> None:
        self._ctx = ctx
        self.id = call_id
        self.remote_uri = remote_uri
        self.local_uri = local_uri
        self.turns: list[str] = []
        self.replies: list[str] = []
        self.interrupted: str | None = None
        self.state = "ringing"
        self.end_reason = ""
        self.started_at = time.monotonic()
        self._session: StreamSession | None = None
        self._reply: _Reply | None = None
        self._task: asyncio.Task[None] | None = None
        self._current: _Gate | None = None
        """The gate of the reply being made, when it was started on a preview."""
        self._preview: _Gate | None = None
        """The reply prepared on the caller's last final preview, not yet confirmed."""
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=16)
        self._worker: asyncio.Task[None] | None = None
        self._sent = 0
        """Samples of the agent's audio sent to the SIP program (its sample clock)."""
        self._played = 0
        """Samples of it played into the call, as last reported."""
        self._clearing = False
        self._in_utterance = False
        self._loud = 0
        """Consecutive loud 20 ms frames of the caller while the agent plays."""
        self._paused = False
        self._hold = 0
        self._ended = asyncio.Event()
        self._media = False
        self._transfer_to = ""
        self.transferred: str | None = None
        """The final status of the last :meth:`transfer` ("200 OK", "486 Busy Here"), or
        None while there is none."""

    def __repr__(self) -> str:
        return f"<PhoneCall {self.id} {self.state} from {self.remote_uri}>"

    # ------------------------------------------------------------------ public, any thread

    @property
    def speaking(self) -> bool:
        """True while the agent is making or playing a reply (a reply prepared on an early
        final counts once the final confirms it: until then the caller is still talking).
        """
        making = self._task is not None and not self._task.done() and \
            (self._current is None or self._current.released)
        return making or self._played < self._sent

    def say(self, text: Any) -> None:
        """Speak ``text`` (a str, or an iterable / async iterable of pieces) after any reply
        already queued; any thread.
        """
        self._hop(self._enqueue, text)

    def hangup(self) -> None:
        """End the call (BYE, or a decline while ringing); any thread."""
        self._hop(lambda: self._ctx.send("hangup", {"call": self.id}))

    def transfer(self, uri: str) -> None:
        """Ask the caller to call ``uri`` instead (SIP REFER); any thread.

        The caller's phone places the new call and reports how it goes: once the target
        answers, :attr:`transferred` is its status line and this call is hung up; if the
        caller's phone refuses or the target does not answer, the failure reaches
        ``on_error`` as a :class:`~harken.errors.PhoneError` (and :attr:`transferred` says
        it) and the call goes on.

        Raises:
            ConfigError: ``uri`` is not a SIP URI.
        """
        target = check_sip_uri(uri, "transfer target")

        def send() -> None:
            self._transfer_to = target
            self._ctx.send("transfer", {"call": self.id, "uri": target})

        self._hop(send)

    def transfer_status(self, code: int, reason: str, final: bool) -> None:
        """The caller's phone reported on the transfer (``final``: its last word)."""
        logger.debug("call %d: transfer %d %s%s", self.id, code, reason,
                     " (final)" if final else "")
        if not final and code < 300:
            return
        self.transferred = f"{code} {reason}".strip()
        if code < 300:
            self.hangup()  # the caller talks to the target now
        else:
            self._ctx.report(PhoneError(f"the transfer to "
                                        f"{self._transfer_to} failed: {self.transferred}"),
                             self)

    def _hop(self, fn: Callable[..., object], *args: Any) -> None:
        loop = self._ctx.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    # ------------------------------------------------------------------ from the agent

    def media_started(self) -> None:
        """Audio flows: open the recognizer session and greet the user's hook."""
        if self._media or self.state == "ended":
            return
        self._media = True
        self.state = "active"
        session = StreamSession(self._ctx.host, f"call {self.id}", self._on_event,
                                vad_config=self._ctx.vad_config)
        session.open()  # raises ServerBusy beyond max_calls: the agent declines then
        session.begin(self._ctx.vads.create(), self._ctx.realtime, sample_rate=SAMPLE_RATE,
                      encoding="pcm16", turn=self._ctx.vads.turn(self._ctx.vad_config),
                      hints=NO_WORDS)  # a call uses the text only: no alignment pass
        self._session = session
        self._worker = self._ctx.loop.create_task(self._speak_loop())
        self._event_hook(self._ctx.hooks.on_call_start, self)

    def audio(self, pcm: bytes, played: int) -> None:
        """20 ms of the caller's audio, and how much of the agent's audio was played."""
        if not self._clearing:
            self._played = max(self._played, played)
            if self._ctx.barge_in and self._played < self._sent:
                self._gate(pcm)
        session = self._session
        if session is None or session.fatal is not None:
            return
        try:
            session.feed_bytes(pcm)
        except Exception as exc:  # ServerBusy: the engine cannot keep up with this call
            self._ctx.report(exc, self)

    def cleared(self, played: int) -> None:
        """The SIP program dropped the queued audio after ``played`` samples."""
        self._clearing = False
        self._played = self._sent = max(played, self._played)
        reply = self._reply
        if reply is not None:
            self.interrupted = _heard(reply.sentences, played)
            self._reply = None
            self._event_hook(self._ctx.hooks.on_barge_in, self, self.interrupted)

    def dtmf(self, digit: str) -> None:
        """The caller pressed a key."""
        self._event_hook(self._ctx.hooks.on_dtmf, self, digit)

    async def ended(self, code: int, reason: str) -> None:
        """The call is over: finish the last utterance's final, then tell the hook."""
        if self.state == "ended":
            return
        self.state = "ended"
        self.end_reason = f"{code} {reason}".strip()
        self._cancel_reply()
        self._sent = self._played  # what was queued will never play
        if self._worker is not None:
            self._worker.cancel()
        session, self._session = self._session, None
        if session is not None:
            session.flush()
            await session.drain(_DRAIN_S)
            session.close()
        self._ended.set()
        if self._media:
            self._event_hook(self._ctx.hooks.on_call_end, self)

    async def wait_ended(self) -> None:
        """Return once :meth:`ended` has finished."""
        await self._ended.wait()

    # ------------------------------------------------------------------ recognizer events

    def _on_event(self, event: Event) -> None:
        if isinstance(event, SpeechStarted):
            self._in_utterance = True
            self._speech_started()
        elif isinstance(event, SpeechEnded):
            self._in_utterance = False
        elif isinstance(event, PartialTranscript):
            self._event_hook(self._ctx.hooks.on_partial, self, event.text)
        elif isinstance(event, FinalTranscript):
            self._final(event)
        elif isinstance(event, FinalPreview):
            self._prepare(event)
        elif isinstance(event, ErrorEvent):
            self._ctx.report(event.error, self)

    def _speech_started(self) -> None:
        if not self._ctx.barge_in or not self.speaking or self._clearing:
            return
        if self._ctx.barge_in_min_ms > 0:
            # Barge in only if the caller is still speaking barge_in_min_ms later.
            self._ctx.loop.call_later(self._ctx.barge_in_min_ms / 1000.0, self._confirm_barge)
            return
        self._barge_in()

    def _confirm_barge(self) -> None:
        if self._in_utterance and self.speaking and not self._clearing:
            self._barge_in()

    def _gate(self, pcm: bytes) -> None:
        """Pause the agent's audio on the first loud frames, before the VAD confirms speech
        (which takes ``start_ms``); play on if it does not confirm within _HOLD_FRAMES.
        """
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        loud = len(x) > 0 and float(np.mean(x * x)) > _GATE_POWER
        self._loud = self._loud + 1 if loud else 0
        if self._paused:
            self._hold -= 1
            if self._hold <= 0:
                self._paused = False
                self._ctx.send("pause", {"call": self.id, "paused": False})
        elif self._loud >= max(_GATE_FRAMES, self._ctx.barge_in_min_ms // 20):
            self._paused = True
            self._hold = _HOLD_FRAMES + self._ctx.barge_in_min_ms // 20
            self._ctx.send("pause", {"call": self.id, "paused": True})

    def _barge_in(self) -> None:
        logger.debug("call %d: the caller barged in", self.id)
        self._cancel_reply()
        self._clearing = True
        self._paused = False
        self._ctx.send("clear", {"call": self.id})

    def _prepare(self, event: FinalPreview) -> None:
        """Start the reply to an early final (preemptive replies): its audio waits for the
        final to confirm the same text, and is dropped otherwise.
        """
        self._drop_preview()
        text = event.text.strip()
        if not text or self.state == "ended" or self._ctx.hooks.on_turn is None or \
                _echoes(text, self._recent_reply_text()):
            return
        gate = _Gate(event.utterance_id, text, self._stages(time.monotonic()))
        self._preview = gate
        self._enqueue(_TurnRequest(text, gate.stages, gate))

    def _drop_preview(self) -> None:
        gate, self._preview = self._preview, None
        if gate is None:
            return
        gate.dropped = True  # still queued: skipped when its turn comes
        if self._current is gate and self._task is not None:
            self._task.cancel()

    def _stages(self, now: float) -> _Stages:
        lag = self._session.stream_seconds if self._session is not None else 0.0
        return _Stages(now, now, lag)

    def _final(self, event: FinalTranscript) -> None:
        text = event.text.strip()
        gate = self._preview
        if gate is not None and not event.split and gate.utterance_id == event.utterance_id \
                and gate.text == text and not gate.dropped:
            self._preview = None
            self.turns.append(text)
            gate.stages.final = time.monotonic()
            gate.stages.end_at(event.end)
            gate.release()
            return
        self._drop_preview()
        if not text:
            return
        if _echoes(text, self._recent_reply_text()):
            logger.info("call %d: dropped a final that repeats the agent's reply: %r",
                        self.id, text)
            return
        self.turns.append(text)
        if self.state != "ended" and self._ctx.hooks.on_turn is not None:
            stages = self._stages(time.monotonic())
            stages.end_at(event.end)
            self._enqueue(_TurnRequest(text, stages))

    def _recent_reply_text(self) -> str:
        reply = self._reply
        return " ".join(reply.text) if reply is not None and self.speaking else ""

    # ------------------------------------------------------------------ replies

    def _enqueue(self, item: Any) -> None:
        if self.state == "ended":
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._ctx.report(RuntimeError(f"call {self.id}: more than 16 replies waiting; "
                                          "one was dropped"), self)

    async def _speak_loop(self) -> None:
        while True:
            item = await self._queue.get()
            gate = item.gate if isinstance(item, _TurnRequest) else None
            if gate is not None and gate.dropped:
                continue
            self._current = gate
            self._task = self._ctx.loop.create_task(self._respond(item))
            try:
                await self._task
            except asyncio.CancelledError:
                if self.state == "ended":
                    raise
            except Exception as exc:
                self._ctx.report(exc, self)

    async def _respond(self, item: Any) -> None:
        stages = self._stages(time.monotonic())
        gate = None
        if isinstance(item, _TurnRequest):
            stages, gate = item.stages, item.gate
            hook = self._ctx.hooks.on_turn
            assert hook is not None
            source = await asyncio.wrap_future(self._ctx.turns.submit(hook, self, item.text))
            stages.hook = time.monotonic()
        else:
            source = item
        reply = _Reply(gate=gate)
        if gate is None:
            self._reply = reply
        cutter = TextCutter()
        async for piece in reply_pieces(source, self._ctx.turns):
            reply.text.append(piece)
            if gate is None or gate.released:
                self._show(reply)
            for sentence in cutter.feed(piece):
                await self._speak_sentence(reply, sentence, stages)
        for sentence in cutter.flush():
            await self._speak_sentence(reply, sentence, stages)
        if gate is not None:  # also a reply with nothing to say belongs to the turn
            await gate.wait()
            self._show(reply)

    def _show(self, reply: _Reply) -> None:
        """The reply's text so far is in :attr:`replies` (and is what the caller hears)."""
        if reply.index is None:
            self._reply = reply
            self.replies.append("")
            reply.index = len(self.replies) - 1
        self.replies[reply.index] = "".join(reply.text)

    async def _speak_sentence(self, reply: _Reply, sentence: str, stages: _Stages) -> None:
        units = first_pieces(sentence, not reply.sentences)
        if len(units) == 1:
            await self._speak(reply, sentence, stages)
            return
        # The pieces after the first are asked for at once: the voice makes them in order
        # while the first words are made, wait for the final and play.
        queues: list[asyncio.Queue[np.ndarray | None]] = [asyncio.Queue() for _ in units[1:]]
        tasks = [self._ctx.loop.create_task(collect(self._ctx.voice.sentence(unit), queue))
                 for unit, queue in zip(units[1:], queues, strict=True)]
        try:
            await self._speak(reply, units[0], stages, goes_on=True)
            for i, unit in enumerate(units[1:]):
                await self._speak(reply, unit, stages, joined=True, goes_on=i + 2 < len(units),
                                  audio=drain(queues[i], tasks[i]))
        finally:
            for task in tasks:
                task.cancel()
                if task.done() and not task.cancelled():
                    task.exception()  # raised by drain already, or moot after an error

    async def _speak(self, reply: _Reply, text: str, stages: _Stages, *, joined: bool = False,
                     goes_on: bool = False,
                     audio: AsyncIterator[np.ndarray] | None = None) -> None:
        """Synthesise ``text`` and queue its audio in the SIP program. The silence a voice
        puts before and after each piece is dead air where a long first sentence was cut
        (``goes_on``: a piece the sentence goes on after; ``joined``: one that goes on from
        the last) and before the reply's first sound: it is dropped there, down to a short
        natural gap.
        """
        entry = _Sentence(text, self._sent, self._sent)
        reply.sentences.append(entry)
        first = len(reply.sentences) == 1
        if first:
            stages.text = time.monotonic()
        held = np.zeros(0, dtype=np.int16)  # the piece's quiet end so far (goes_on)
        async for chunk in audio if audio is not None else self._ctx.voice.sentence(text):
            if entry.end == entry.start and (first or joined):
                chunk = chunk[lead_in(chunk):]
            if first and entry.end == entry.start:
                made = time.monotonic()
                gate = reply.gate
                if gate is not None and not gate.released:
                    await gate.wait()  # preemptive: speak once the final confirms it
                    entry.start = entry.end = self._sent
                self._show(reply)  # (a preemptive reply's final may have come first)
                stages.log(self.id, made)
            if goes_on:
                chunk = np.concatenate([held, chunk])
                cut = len(chunk) - quiet_tail(chunk)
                chunk, held = chunk[:cut], chunk[cut:]
            self._send_audio(chunk, entry)
        if goes_on:
            self._send_audio(held[:JOIN_KEEP], entry)

    def _send_audio(self, chunk: np.ndarray, entry: _Sentence) -> None:
        pcm = np.ascontiguousarray(chunk, dtype="<i2").tobytes()
        for i in range(0, len(pcm), 16000):  # at most 1 s per message
            piece = pcm[i:i + 16000]
            if not self._ctx.send("audio", {"call": self.id}, piece):
                raise PhoneError(f"call {self.id}: the SIP program took no more audio; "
                                 f"the rest of {entry.text!r} was not said")
            self._sent += len(piece) // 2
            entry.end = self._sent

    def _cancel_reply(self) -> None:
        self._drop_preview()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        while not self._queue.empty():
            self._queue.get_nowait()

    # ------------------------------------------------------------------ hooks

    def _event_hook(self, hook: Callable[..., Any] | None, *args: Any) -> None:
        if hook is None:
            return
        future = self._ctx.events.submit(hook, *args)
        future.add_done_callback(self._hook_done)

    def _hook_done(self, future: Any) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._ctx.loop.call_soon_threadsafe(self._ctx.report, exc, self)


@dataclass
class _Stages:
    """When a turn passed each stage (time.monotonic() seconds), for the debug log."""

    speech_end: float
    """The caller's end of speech; until :meth:`end_at`, the time the turn was made."""
    final: float
    heard: float = 0.0
    """Seconds of call audio heard when the turn was made."""
    hook: float = 0.0
    text: float = 0.0

    def end_at(self, end: float) -> None:
        """The final ends ``end`` s into the call's audio: place the end of speech."""
        self.speech_end -= max(0.0, self.heard - end)

    def log(self, call_id: int, audio: float) -> None:
        def since(t: float) -> str:
            return f"{t - self.speech_end:+.3f}" if t else "-"

        logger.debug("call %d turn stages after the end of speech at %.3f (monotonic): final "
                     "%s, reply %s, first text to the voice %s, first audio back %s s",
                     call_id, self.speech_end, since(self.final), since(self.hook),
                     since(self.text), since(audio))


@dataclass(frozen=True)
class _TurnRequest:
    text: str
    stages: _Stages
    gate: _Gate | None = None


def _heard(sentences: list[_Sentence], played: int) -> str:
    """The reply's text up to sample ``played``: whole sentences, then the share of the
    words of the sentence playing then (words take about equal time).
    """
    out: list[str] = []
    for s in sentences:
        if s.end > s.start and played >= s.end:
            out.append(s.text)
        elif played > s.start:
            words = s.text.split()
            share = (played - s.start) / max(1, s.end - s.start)
            out.append(" ".join(words[:int(len(words) * share)]))
            break
        else:
            break
    return " ".join(w for w in out if w)


_WORD = re.compile(r"[a-z0-9']+")


def _echoes(text: str, reply: str) -> bool:
    """True when most words of a caller's final are the reply's words being played."""
    if not reply:
        return False
    words = _WORD.findall(text.lower())
    said = set(_WORD.findall(reply.lower()))
    if len(words) < 3:
        return False
    return sum(w in said for w in words) / len(words) >= 0.8

