"""PhoneAgent: answers SIP calls, hears the caller, replies by voice, lets the caller barge in.

What runs where (start() to close()):

- the SIP program (:mod:`harken.phone.sip_program`, its own process): PJSUA2, the SIP
  socket, RTP, the media ports;
- one engine program for every call (an :class:`~harken.server.engine_host.EngineHost`, as
  ``harken serve`` sessions share), finals round-robin across calls;
- one speech engine program for every call (:class:`~harken.phone.voice.SpeakerVoice`: Piper
  or espeak-ng), or the user's :class:`PhoneVoice`;
- in this process: the "harken-phone" thread with an asyncio loop where calls live (VAD,
  turn-taking, barge-in), "harken-phone-hooks" for event hooks and "harken-phone-turn-N"
  for ``on_turn``.

Nothing starts before :meth:`PhoneAgent.start`; importing this module imports no PJSUA2.
A multiprocessing child that is re-importing the user's main module (spawn and forkserver
do that) gets a start() that does nothing but log: the user's script may create and start
its agent at module level without a main guard, and the pool's children do not answer
calls.

It is one piece (just over the ~400-line guide) because it is the public face: the
constructor's documented options, the lifecycle and the routing of the SIP program's
messages to calls, which share the loop's state.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

from .._threads import join_thread
from ..config import EngineConfig, RealtimeConfig, VadConfig
from ..errors import ConfigError, LifecycleError, PhoneError
from ..server.engine_host import EngineHost
from ..server.engine_pool import pool_engine
from ..server.vads import VadFactory
from ..worker.protocol import Message
from .call import CallContext, PhoneCall, PhoneHooks
from .hooks import Workers
from .sip_process import SipProcess
from .voice import PhoneVoice, SpeakerVoice
from .wire import check_sip_uri, parse_listen

__all__ = ["PhoneAgent"]

logger = logging.getLogger("harken.phone")


ENGINES = 1
"""The agent's default engine programs: one, not ``harken serve``'s pool size (0). A call's
finals come one at a time and calls seldom end turns together, so one decode on all the
cores beats two on half each, and Piper needs the cores too: on a shared 2-core machine,
``benchmarks/phone.py --calls 4 --barge 0``, runs interleaved, 1 engine x 2 threads turn
latency p50 1.03 s, p95 1.51 s (medians of 3) against 2 x 1 p50 1.32 s, p95 2.05 s; and a
second engine costs ~230 MB.
"""


def _echo(call: PhoneCall, text: str) -> str:
    return text


class PhoneAgent:
    """A SIP phone agent: every call is a recorder and a voice joined at the call's audio.

    Args:
        on_turn: ``on_turn(call, text)`` for each of the caller's finals; returns what to
            say: a str, an iterable or async iterable of text pieces (spoken sentence by
            sentence as they arrive), a coroutine of those, or None. Runs on a hook thread.
        listen: ``host:port`` of the UDP SIP socket.
        echo: without ``on_turn``, repeat what the caller said.
        on_partial: ``on_partial(call, text)`` while the caller speaks (turns on partial
            passes, which cost engine time).
        on_call: ``on_call(call) -> bool``: answer (True) or reject (False, 486 Busy).
        on_call_start: ``on_call_start(call)`` once audio flows.
        on_call_end: ``on_call_end(call)`` after the call's last final.
        on_dtmf: ``on_dtmf(call, digit)``.
        on_barge_in: ``on_barge_in(call, heard)``: the caller interrupted; ``heard`` is the
            part of the reply that was played.
        on_error: ``on_error(error, call_or_None)`` for every error; fatal ones are also
            raised by :meth:`wait`.
        register: ``sip:user@host`` to register as (optional).
        password: the registration's password.
        registrar: the registrar URI; default ``sip:<host of register>``.
        engine: the recognizer (default: the embedded faster-whisper tiny.en).
        vad: segmentation settings (``post_speech_silence_ms`` ends a turn).
        voice: the agent's voice (default: a :class:`SpeakerVoice`: Piper with its voice
            package when installed, else espeak-ng, in one speech engine program).
        max_calls: calls at once; more are rejected with 486 Busy. The pjsua2-python
            2.15.1 wheel is built with PJSUA's limit of 4 calls per endpoint (measured:
            the 5th caller gets 486 whatever ``maxCalls`` says), so more than 4 needs a
            pjsua2 built with a larger ``PJSUA_MAX_CALLS``.
        rtp_port: the first RTP port to use (each call takes two from here).
        barge_in: stop the reply when the caller speaks.
        barge_in_min_ms: extra milliseconds of caller speech before barging in (0: the
            VAD's confirmed onset is enough).
        start_timeout_s: seconds the engine may take to load.
        engines: engine programs the calls share (finals go to the least busy), each with
            ``cores // engines`` CTranslate2 threads unless ``engine.cpu_threads`` says;
            0: ``harken serve``'s default (see
            :func:`~harken.server.engine_pool.pool_size`).
        jitter_buffer_ms: the most of the caller's audio the receive jitter buffer may
            hold back, in ms (it adapts between one 20 ms frame and this); every ms of it
            delays the end of each turn. 40 suits a LAN or 127.0.0.1 (measured: 42-46 ms
            held on average, against 94-103 ms with PJMEDIA's default); a caller across
            the internet may need 100-200; None keeps PJMEDIA's adaptive default.
        preemptive: start each reply on the caller's early final (the recognizer's
            speculative pass, made about 130 ms into the caller's silence), before the
            silence that ends the turn (``post_speech_silence_ms``) has lasted: ``on_turn``
            runs and the first words are synthesised meanwhile, and they play the moment
            the final confirms the same text. If the caller goes on speaking, the prepared
            reply is dropped unheard, but ``on_turn`` has run for a turn that did not
            happen: so it is off by default for your own ``on_turn`` (turn it on when the
            hook has no side effects) and on with ``echo`` (None).
    """

    def __init__(self, on_turn: Callable[..., Any] | None = None, *,
                 listen: str = "127.0.0.1:5070", echo: bool = False,
                 on_partial: Callable[..., Any] | None = None,
                 on_call: Callable[..., Any] | None = None,
                 on_call_start: Callable[..., Any] | None = None,
                 on_call_end: Callable[..., Any] | None = None,
                 on_dtmf: Callable[..., Any] | None = None,
                 on_barge_in: Callable[..., Any] | None = None,
                 on_error: Callable[..., Any] | None = None,
                 register: str | None = None, password: str | None = None,
                 registrar: str | None = None, engine: EngineConfig | None = None,
                 vad: VadConfig | None = None, voice: PhoneVoice | None = None,
                 max_calls: int = 4, rtp_port: int = 40000, barge_in: bool = True,
                 barge_in_min_ms: int = 0, start_timeout_s: float = 120.0,
                 preemptive: bool | None = None,
                 jitter_buffer_ms: int | None = 40, engines: int = ENGINES) -> None:
        if on_turn is not None and not callable(on_turn):
            raise ConfigError("on_turn must be a function (call, text) -> reply")
        if on_turn is None and echo:
            on_turn = _echo
        self.preemptive = on_turn is _echo if preemptive is None else bool(preemptive)
        self.host, self.port = parse_listen(listen)
        if register is not None:
            check_sip_uri(register, "register")
            if registrar is None:
                registrar = "sip:" + register.split("@", 1)[-1].split(";", 1)[0]
        if registrar is not None:
            check_sip_uri(registrar, "registrar")
        checked = [("max_calls", max_calls, 1), ("rtp_port", rtp_port, 1024),
                   ("barge_in_min_ms", barge_in_min_ms, 0), ("engines", engines, 0)]
        if jitter_buffer_ms is not None:
            checked.append(("jitter_buffer_ms", jitter_buffer_ms, 20))
        for name, value, low in checked:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
        if rtp_port + 4 * max_calls > 65535:
            raise ConfigError(f"rtp_port {rtp_port} leaves no room for {max_calls} calls")
        self.hooks = PhoneHooks(on_turn, on_partial, on_call, on_call_start, on_call_end,
                                on_dtmf, on_barge_in, on_error)
        self._register = register
        self._password = password
        self._registrar = registrar
        self.engine = engine or EngineConfig()
        self.vad = vad or VadConfig()
        self.voice: PhoneVoice = voice if voice is not None else SpeakerVoice()
        self.max_calls = max_calls
        self.rtp_port = rtp_port
        self.barge_in = barge_in
        self.barge_in_min_ms = barge_in_min_ms
        self.jitter_buffer_ms = jitter_buffer_ms
        self.start_timeout_s = start_timeout_s
        self.engines = engines
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._start_error: BaseException | None = None
        self._sip: SipProcess | None = None
        self._engine_host: EngineHost | None = None
        self._ctx: CallContext | None = None
        self._calls: dict[int, PhoneCall] = {}
        self._ending: set[asyncio.Task[None]] = set()
        self.fatal: BaseException | None = None
        """The error that stopped the agent, if one did."""
        self.errors: list[BaseException] = []
        """Every error reported (the last 100)."""
        self.skipped = False
        """True when start() ran in a multiprocessing child importing the main module."""
        self.finished_calls: list[PhoneCall] = []
        """Calls that ended (the last 100), oldest first."""
        self.registration: str | None = None
        """The registrar's last answer ("200 OK"), when registering."""

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> PhoneAgent:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """``host:port`` the agent listens on."""
        return f"{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        """A URI that reaches the agent directly, e.g. ``sip:agent@127.0.0.1:5070``."""
        return f"sip:agent@{self.address}"

    @property
    def calls(self) -> list[PhoneCall]:
        """The calls now ringing or active."""
        return list(self._calls.values())

    def start(self) -> None:
        """Start the SIP program, the engine and the voice; returns once calls can come in.

        Raises:
            LifecycleError: started twice.
            PhoneError: the SIP side could not start (e.g. the port is in use).
            WorkerError, BackendNotInstalled: the engine or the voice could not start.
        """
        if self._thread is not None or self.skipped:
            raise LifecycleError("PhoneAgent.start() called twice; create a new agent")
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            logger.warning("PhoneAgent.start() ignored: this is a multiprocessing child "
                           "importing the main module; only the parent answers calls (put "
                           "the agent under if __name__ == '__main__': to avoid this)")
            self.skipped = True
            self._done.set()
            return
        self._thread = threading.Thread(target=self._run, name="harken-phone", daemon=True)
        self._thread.start()
        self._ready.wait(self.start_timeout_s + 30.0)
        if self._start_error is not None:
            self._thread.join(5.0)
            raise self._start_error
        if not self._ready.is_set():
            self.close()
            raise PhoneError(f"the phone agent did not start within {self.start_timeout_s} s")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the agent is closed (or ``timeout`` s); True if it is.

        Raises:
            The fatal error that stopped it (the SIP program or the engine died).
        """
        done = self._done.wait(timeout)
        if self.fatal is not None:
            raise self.fatal
        return done

    def close(self, timeout: float = 2.0) -> None:
        """Hang up every call, stop everything, join the threads; idempotent, bounded."""
        thread = self._thread
        if thread is None:
            self._done.set()
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        join_thread(thread, timeout + 1.0, logger)

    # ------------------------------------------------------------------ the loop thread

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._done.set()
            self._ready.set()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        events = Workers("harken-phone-hooks", 1, max_queued=1000)
        turns = Workers("harken-phone-turn", min(4, self.max_calls), max_queued=256)
        engine, engines = pool_engine(self.engine, self.engines)
        host = EngineHost(engine, engines=engines, max_sessions=self.max_calls,
                          start_timeout_s=self.start_timeout_s)
        sip: SipProcess | None = None
        try:
            events.start()
            turns.start()
            vads = VadFactory(self.vad)
            await asyncio.gather(host.start(), asyncio.to_thread(vads.load),
                                 self.voice.start())
            self._engine_host = host
            realtime = RealtimeConfig(partials=self.hooks.on_partial is not None,
                                      preview_finals=self.preemptive)
            sip = SipProcess(self._sip_settings(), self._from_sip, self._sip_died)
            self._ctx = CallContext(loop, sip.send, host, vads, self.vad, realtime,
                                    self.voice, self.hooks, events, turns, self._report,
                                    self.barge_in, self.barge_in_min_ms)
            await asyncio.to_thread(sip.start)
            self._sip = sip
        except BaseException as exc:
            self._start_error = exc
            await self._shutdown(sip, host, events, turns, timeout=1.5)
            return
        logger.info("phone agent listening on %s", self.address)
        self._ready.set()
        await self._stop.wait()
        await self._shutdown(sip, host, events, turns, timeout=1.5)

    async def _shutdown(self, sip: SipProcess | None, host: EngineHost, events: Workers,
                        turns: Workers, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if sip is not None:
            await asyncio.to_thread(sip.close, 0.8)  # hangs up every call (BYE)
        for call in list(self._calls.values()):
            call.state = "ended"  # no drain: close() is bounded
        for task in list(self._ending):
            task.cancel()
        self._calls.clear()
        await host.close(max(0.2, deadline - time.monotonic()))
        try:
            await self.voice.close()
        except Exception:  # pragma: no cover - a user's voice
            logger.exception("the phone voice failed to close")
        left = max(0.1, deadline - time.monotonic())
        await asyncio.to_thread(events.close, left / 2)
        await asyncio.to_thread(turns.close, left / 2)

    def _sip_settings(self) -> dict[str, Any]:
        user = None
        id_uri = self.uri
        if self._register is not None:
            id_uri = self._register
            user = self._register.split(":", 1)[1].split("@", 1)[0]
        return {"host": self.host, "port": self.port, "rtp_port": self.rtp_port,
                "rtp_port_range": 4 * self.max_calls + 4, "id_uri": id_uri,
                "registrar": self._registrar, "user": user, "password": self._password,
                "max_calls": self.max_calls, "log_level": logger.getEffectiveLevel(),
                "jitter_buffer_ms": self.jitter_buffer_ms}

    # ------------------------------------------------------------------ SIP messages

    def _from_sip(self, message: Message) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._on_sip, message)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _sip_died(self, how: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._on_sip_died, how)
            except RuntimeError:
                pass

    def _on_sip_died(self, how: str) -> None:
        error = PhoneError(how)
        self.fatal = error
        self._report(error, None)
        for call_id in list(self._calls):
            self._end(call_id, 0, "the SIP program died")
        if self._stop is not None:
            self._stop.set()

    def _on_sip(self, message: Message) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        h = message.header
        kind = message.type
        call = self._calls.get(int(h["call"])) if "call" in h and h["call"] is not None \
            else None
        if kind == "audio":
            if call is not None:
                call.audio(message.payload, int(h["played"]))
        elif kind == "incoming":
            self._incoming(ctx, int(h["call"]), str(h["remote"]), str(h["local"]))
        elif kind == "media":
            if call is not None:
                try:
                    call.media_started()
                except Exception as exc:  # ServerBusy: no room in the engine host
                    self._report(exc, call)
                    call.hangup()
        elif kind == "cleared":
            if call is not None:
                call.cleared(int(h["played"]))
        elif kind == "dtmf":
            if call is not None:
                call.dtmf(str(h["digit"]))
        elif kind == "transfer_status":
            if call is not None:
                call.transfer_status(int(h["code"]), str(h["reason"]), bool(h["final"]))
        elif kind == "ended":
            self._end(int(h["call"]), int(h["code"]), str(h["reason"]))
        elif kind == "registration":
            code = int(h["code"])
            self.registration = f"{code} {h['reason']}"
            if code >= 300 or code < 200:
                self._report(PhoneError(f"registration failed: {code} {h['reason']}"), None)
            else:
                logger.info("registered (%d %s)", code, h["reason"])
        elif kind == "error":
            self._report(PhoneError(str(h["message"])), call)

    def _incoming(self, ctx: CallContext, call_id: int, remote: str, local: str) -> None:
        call = PhoneCall(ctx, call_id, remote, local)
        self._calls[call_id] = call
        if len(self._calls) > self.max_calls:
            logger.warning("call from %s rejected: %d calls already", remote, self.max_calls)
            ctx.send("answer", {"call": call_id, "code": 486})
            return
        hook = self.hooks.on_call
        if hook is None:
            ctx.send("answer", {"call": call_id, "code": 200})
            return

        def decided(future: Any) -> None:
            accept = not future.cancelled() and future.exception() is None and \
                bool(future.result())
            if not future.cancelled() and future.exception() is not None:
                ctx.loop.call_soon_threadsafe(self._report, future.exception(), call)
            ctx.loop.call_soon_threadsafe(
                lambda: ctx.send("answer", {"call": call_id, "code": 200 if accept else 486}))

        ctx.events.submit(hook, call).add_done_callback(decided)

    def _end(self, call_id: int, code: int, reason: str) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        self.finished_calls = (self.finished_calls + [call])[-100:]
        task = asyncio.get_running_loop().create_task(call.ended(code, reason))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    def _report(self, error: BaseException, call: PhoneCall | None) -> None:
        logger.warning("%s%s", f"call {call.id}: " if call is not None else "", error)
        self.errors = (self.errors + [error])[-100:]
        host = self._engine_host
        if host is not None and host.fatal is not None and self.fatal is None:
            self.fatal = host.fatal
            if self._stop is not None:
                self._stop.set()
        hook = self.hooks.on_error
        if hook is not None and self._ctx is not None:
            self._ctx.events.submit(hook, error, call)
