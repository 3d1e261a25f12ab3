"""The SIP program: ``python -m harken.phone.sip_program``, the only place PJSUA2 runs.

Started by :class:`harken.phone.sip_process.SipProcess` as its own program (never through
multiprocessing), so that PJSUA2's sharp edges stay out of the user's process: a failed
assertion (SIGABRT) kills this program, not the user's; the one-endpoint-per-process rule
holds whatever the user's program does; and the user's main module is never imported here.
It speaks the frames of :mod:`harken.worker.protocol` on stdin/stdout (messages: see
:mod:`harken.phone.wire`); file descriptor 1 points at stderr so that nothing printed can
corrupt the frames.

Threads: the main thread owns the endpoint (``threadCnt = 0``): it polls
``libHandleEvents`` every 10 ms and runs the parent's commands between polls, so every
PJSUA2 call is made on it and SIP callbacks run on it. PJSIP's clock thread calls the media
ports every 20 ms: it takes the call's queued outgoing audio (a lock-protected bytearray)
and puts the caller's audio on the bounded outgoing message queue. "harken-sip-reader"
reads stdin into the command queue and "harken-sip-writer" writes the outgoing queue to
stdout; neither touches PJSUA2 (an unregistered thread calling PJSUA2 aborts the process).
Exit codes: 0 after "shutdown" or EOF on stdin, 2 on a protocol error, 3 when the endpoint
could not start (the "failed" message says why). ``HARKEN_PJ_LOG=5`` in the environment
shows PJSIP's own log on stderr (default 1: errors only).

It is one piece (over the ~400-line guide) because it is the only module that may touch
PJSUA2: the endpoint, the calls, the media ports and the thread rules between them stay
together, so no other module can import pjsua2 by accident.
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from typing import IO, Any

from ..worker.protocol import Message, read_message, write_message
from .wire import FRAME_BYTES, SAMPLE_RATE, check_phone_message

__all__ = ["main"]

logger = logging.getLogger("harken.phone.sip")

_OUT_QUEUE = 2000
"""Messages waiting for the parent (~8 s of audio for 4 calls); more are dropped and counted."""
_KEPT_PORTS = 16
"""Media ports of ended calls kept alive a while longer (see _Agent._reap)."""
_MAX_PENDING_OUT_S = 600.0
"""Seconds of the agent's audio one call may hold queued here (10 minutes)."""


class _Outbox:
    """Frames for the parent, written by the "harken-sip-writer" thread in order."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._queue: queue.Queue[tuple[str, dict[str, Any], bytes] | None] = queue.Queue(_OUT_QUEUE)
        self.dropped = 0
        self.broken = False
        self._thread = threading.Thread(target=self._run, name="harken-sip-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, type: str, header: dict[str, Any], payload: bytes = b"") -> None:
        try:
            self._queue.put_nowait((type, header, payload))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        try:
            self._queue.put(None, timeout=1.0)
        except queue.Full:
            pass
        self._thread.join(2.0)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self.broken:
                return
            try:
                write_message(self._stream, *item)
            except (OSError, ValueError):
                self.broken = True


class _PipeLogHandler(logging.Handler):
    def __init__(self, outbox: _Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._outbox.send("log", {"name": record.name, "levelno": record.levelno,
                                      "message": self.format(record)})
        except Exception:  # pragma: no cover - logging must never raise
            pass


def main() -> int:
    """Run the SIP program until "shutdown" or EOF on stdin; returns the exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    stdin = sys.stdin.buffer
    stdout = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    outbox = _Outbox(stdout)
    outbox.start()
    root = logging.getLogger()
    root.addHandler(_PipeLogHandler(outbox))
    try:
        first = read_message(stdin)
        if first is None:
            return 0
        check_phone_message(first, "init")
        root.setLevel(int(first.header["log_level"]))
        agent = _Agent(first.header, outbox)
        try:
            address = agent.start()
        except Exception as exc:
            outbox.send("failed", {"error_type": type(exc).__name__, "message": str(exc),
                                   "traceback": traceback.format_exc()})
            agent.destroy()
            return 3
        outbox.send("ready", {"address": address})
        commands: queue.Queue[Message | None] = queue.Queue()
        reader = threading.Thread(target=_read_commands, args=(stdin, commands, outbox),
                                  name="harken-sip-reader", daemon=True)
        reader.start()
        code = agent.serve(commands)
        agent.destroy()
        outbox.send("shutdown_ack", {})
        return code
    finally:
        outbox.close()


def _read_commands(stdin: IO[bytes], commands: queue.Queue[Message | None],
                   outbox: _Outbox) -> None:
    try:
        while True:
            message = read_message(stdin)
            if message is None:
                break
            check_phone_message(message)
            commands.put(message)
    except Exception as exc:
        logger.error("bad message from the parent: %s", exc)
        commands.put(Message("protocol_error", {"message": str(exc)}))
        return
    commands.put(None)


class _Agent:
    """The endpoint, the account and the live calls; main thread only (see the module doc)."""

    def __init__(self, settings: dict[str, Any], outbox: _Outbox) -> None:
        self._settings = settings
        self._outbox = outbox
        self._pj: Any = None
        self._ep: Any = None
        self._account: Any = None
        self._calls: dict[int, Any] = {}
        self._ended: list[int] = []
        self._closed_ports: collections.deque[Any] = collections.deque(maxlen=_KEPT_PORTS)
        self._next_id = 1

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        import pjsua2 as pj

        self._pj = pj
        s = self._settings
        ep = pj.Endpoint()
        ep.libCreate()
        self._ep = ep
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.maxCalls = int(s["max_calls"])
        cfg.uaConfig.userAgent = "harken-phone"
        cfg.logConfig.level = int(os.environ.get("HARKEN_PJ_LOG", "1"))
        cfg.logConfig.consoleLevel = int(os.environ.get("HARKEN_PJ_LOG", "1"))
        cfg.medConfig.clockRate = SAMPLE_RATE
        cfg.medConfig.sndClockRate = SAMPLE_RATE
        cfg.medConfig.audioFramePtime = 20
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        _set_jitter_buffer(cfg.medConfig, s["jitter_buffer_ms"])
        ep.libInit(cfg)
        host, port = str(s["host"]), int(s["port"])
        tcfg = pj.TransportConfig()
        tcfg.port = port
        tcfg.boundAddress = host
        tcfg.publicAddress = host
        try:
            ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        except pj.Error as exc:
            if "in use" in exc.info().lower() or "98" in exc.info():
                raise OSError(f"UDP {host}:{port} is already in use by another program; "
                              "choose another port with listen=") from None
            raise OSError(f"cannot listen on UDP {host}:{port}: {exc.info()}") from None
        ep.libStart()
        ep.audDevManager().setNullDev()
        # G.711 only: G.722 connects but arrives garbled (reference/sip-spike.md), and the
        # recognizer gains nothing above 8 kHz.
        for codec in ep.codecEnum2():
            name = codec.codecId.lower()
            keep = name.startswith("pcmu/") or name.startswith("pcma/")
            ep.codecSetPriority(codec.codecId, 200 if name.startswith("pcmu/") else
                                150 if keep else 0)
        acfg = pj.AccountConfig()
        acfg.idUri = str(s["id_uri"])
        registrar = s.get("registrar")
        if registrar:
            acfg.regConfig.registrarUri = str(registrar)
            cred = pj.AuthCredInfo("digest", "*", str(s.get("user") or ""), 0,
                                   str(s.get("password") or ""))
            acfg.sipConfig.authCreds.append(cred)
        else:
            acfg.regConfig.registerOnAdd = False
        media = acfg.mediaConfig.transportConfig
        media.boundAddress = host
        media.publicAddress = host
        media.port = int(s["rtp_port"])
        media.portRange = int(s["rtp_port_range"])
        self._account = _make_account(pj, self)
        self._account.create(acfg)
        return f"{host}:{port}"

    def serve(self, commands: queue.Queue[Message | None]) -> int:
        while True:
            self._ep.libHandleEvents(10)
            self._reap()
            while True:
                try:
                    message = commands.get_nowait()
                except queue.Empty:
                    break
                if message is None or message.type == "shutdown":
                    self._hangup_all()
                    return 0
                if message.type == "protocol_error":
                    self._hangup_all()
                    return 2
                try:
                    self._command(message)
                except Exception as exc:  # a pj.Error or a bad call id: the parent hears it
                    text = exc.info() if hasattr(exc, "info") else str(exc)
                    logger.debug("command %s failed: %s", message.type, text)
                    self._outbox.send("error", {"call": message.header.get("call"),
                                                "message": f"{message.type}: {text}"})

    def destroy(self) -> None:
        """Drop every PJSUA2 object, then destroy the library (objects alive there abort)."""
        self._calls.clear()
        self._closed_ports.clear()
        self._account = None
        gc.collect()
        if self._ep is not None:
            try:
                self._ep.libDestroy()
            except Exception:  # pragma: no cover
                logger.exception("libDestroy failed")
            self._ep = None
            gc.collect()

    # ------------------------------------------------------------------ commands

    def _command(self, message: Message) -> None:
        pj = self._pj
        h = message.header
        if message.type == "audio":
            call = self._calls.get(int(h["call"]))
            if call is not None and call.port is not None:
                if not call.port.busy and logger.isEnabledFor(logging.DEBUG):
                    _log_jitter_buffer(call)
                call.port.push(message.payload)
            return
        if message.type == "clear":
            call = self._calls.get(int(h["call"]))
            played = call.port.clear() if call is not None and call.port is not None else 0
            self._outbox.send("cleared", {"call": int(h["call"]), "played": played})
            return
        if message.type == "pause":
            call = self._calls.get(int(h["call"]))
            if call is not None and call.port is not None:
                call.port.paused = bool(h["paused"])
            return
        call = self._calls.get(int(h["call"]))
        if call is None:
            return  # it ended meanwhile; the parent has (or will have) its "ended"
        prm = pj.CallOpParam(True)
        if message.type == "answer":
            prm.statusCode = int(h["code"])
            if prm.statusCode >= 300:
                call.hangup(prm)
            else:
                call.answer(prm)
        elif message.type == "hangup":
            prm.statusCode = 603 if not call.connected else 200
            call.hangup(prm)
        elif message.type == "transfer":
            call.xfer(str(h["uri"]), prm)

    def _hangup_all(self) -> None:
        pj = self._pj
        for call in list(self._calls.values()):
            prm = pj.CallOpParam(True)
            prm.statusCode = 200 if call.connected else 603
            try:
                call.hangup(prm)
            except Exception:
                pass
        deadline = time.monotonic() + 0.6
        while self._calls and time.monotonic() < deadline:
            self._ep.libHandleEvents(10)
            self._reap()

    # ------------------------------------------------------------------ call events

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def add_call(self, call: Any) -> None:
        self._calls[call.harken_id] = call

    def call_ended(self, harken_id: int) -> None:
        self._ended.append(harken_id)

    def _reap(self) -> None:
        while self._ended:
            call = self._calls.pop(self._ended.pop(), None)
            if call is not None and call.port is not None:
                call.port.close()
                # Freed now, the port could be called back by PJSIP's clock thread while
                # Python tears it down (AttributeError in onFrameReceived, seen at hangups).
                self._closed_ports.append(call.port)
                call.port = None

    @property
    def outbox(self) -> _Outbox:
        return self._outbox

    @property
    def pj(self) -> Any:
        return self._pj

    @property
    def max_pending_bytes(self) -> int:
        return int(_MAX_PENDING_OUT_S * SAMPLE_RATE) * 2


def _set_jitter_buffer(media: Any, most_ms: int | None) -> None:
    """Bound the receive jitter buffer's prefetch (the caller's audio held back before the
    agent hears it) to between one frame and ``most_ms``; None keeps PJMEDIA's defaults.

    PJMEDIA's default adapts its prefetch up to hundreds of ms and held 90-130 ms of every
    caller's audio on 127.0.0.1 (more under load): all of it delays the end of each turn.
    """
    if most_ms is None:
        return
    frame = 20
    media.jbInit = frame
    media.jbMinPre = frame
    media.jbMaxPre = max(frame, int(most_ms))


def _log_jitter_buffer(call: Any) -> None:
    """Debug: how long the caller's audio waits in PJMEDIA's jitter buffer (it delays every
    end of speech the agent hears); main thread only.
    """
    try:
        jb = call.getStreamStat(0).jbuf
    except Exception:  # the media is gone
        return
    logger.debug("call %d: incoming jitter buffer delay avg %d ms (min %d, max %d), prefetch "
                 "%d frames (bounds %d-%d), %d discarded, %d empty", call.harken_id,
                 jb.avgDelayMsec, jb.minDelayMsec, jb.maxDelayMsec, jb.prefetch,
                 jb.minPrefetch, jb.maxPrefetch, jb.discard, jb.empty)


def _make_account(pj: Any, agent: _Agent) -> Any:
    """Build the PJSUA2 subclasses here, where pjsua2 is imported (never at module level)."""

    class Port(pj.AudioMediaPort):  # type: ignore[misc]
        def __init__(self, harken_id: int) -> None:
            super().__init__()
            self.harken_id = harken_id
            self._lock = threading.Lock()
            self._pending = bytearray()
            self._played = 0  # samples of the agent's audio sent into the call
            self._closed = False
            self.paused = False  # play silence, keep the queue (a possible barge-in)
            self._playing = False  # the last frame carried the agent's audio

        @property
        def busy(self) -> bool:
            """True while the agent's audio is queued or playing."""
            return self._playing or bool(self._pending)

        def push(self, pcm: bytes) -> None:
            with self._lock:
                if len(self._pending) + len(pcm) <= agent.max_pending_bytes:
                    self._pending += pcm

        def clear(self) -> int:
            with self._lock:
                self._pending.clear()
                self.paused = False
                return self._played

        def close(self) -> None:
            with self._lock:
                self._closed = True
                self._pending.clear()

        def onFrameRequested(self, frame: Any) -> None:  # noqa: N802 - PJSUA2's name
            size = frame.size or FRAME_BYTES
            with self._lock:
                chunk = b"" if self.paused else bytes(self._pending[:size])
                del self._pending[:len(chunk)]
                self._played += len(chunk) // 2
            if chunk and not self._playing:
                logger.debug("call %d: the agent's audio starts at %.3f (monotonic)",
                             self.harken_id, time.monotonic())
            self._playing = bool(chunk)
            if len(chunk) < size:
                chunk += bytes(size - len(chunk))
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(chunk)
            frame.size = size

        def onFrameReceived(self, frame: Any) -> None:  # noqa: N802
            if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or self._closed:
                return
            with self._lock:
                played, pending = self._played, len(self._pending) // 2
            agent.outbox.send("audio", {"call": self.harken_id, "played": played,
                                        "pending": pending}, bytes(frame.buf))

    class Call(pj.Call):  # type: ignore[misc]
        def __init__(self, account: Any, call_id: int) -> None:
            super().__init__(account, call_id)
            self.harken_id = agent.new_id()
            self.port: Any = None
            self.connected = False
            self.linked = False

        def onCallState(self, prm: Any) -> None:  # noqa: N802
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
                self.connected = True
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                agent.outbox.send("ended", {"call": self.harken_id,
                                            "code": int(info.lastStatusCode),
                                            "reason": str(info.lastReason)})
                agent.call_ended(self.harken_id)

        def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
            info = self.getInfo()
            for i, media in enumerate(info.media):
                if (media.type == pj.PJMEDIA_TYPE_AUDIO and
                        media.status == pj.PJSUA_CALL_MEDIA_ACTIVE and not self.linked):
                    fmt = pj.MediaFormatAudio()
                    fmt.type = pj.PJMEDIA_TYPE_AUDIO
                    fmt.clockRate = SAMPLE_RATE
                    fmt.channelCount = 1
                    fmt.bitsPerSample = 16
                    fmt.frameTimeUsec = 20000
                    self.port = Port(self.harken_id)
                    self.port.createPort(f"harken{self.harken_id}", fmt)
                    audio = self.getAudioMedia(i)
                    audio.startTransmit(self.port)
                    self.port.startTransmit(audio)
                    self.linked = True
                    agent.outbox.send("media", {"call": self.harken_id})

        def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
            agent.outbox.send("dtmf", {"call": self.harken_id, "digit": str(prm.digit)})

        def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802
            agent.outbox.send("transfer_status", {
                "call": self.harken_id, "code": int(prm.statusCode),
                "reason": str(prm.reason), "final": bool(prm.finalNotify)})

    class Account(pj.Account):  # type: ignore[misc]
        def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
            call = Call(self, prm.callId)
            info = call.getInfo()
            agent.add_call(call)
            ring = pj.CallOpParam(True)
            ring.statusCode = 180
            call.answer(ring)
            agent.outbox.send("incoming", {"call": call.harken_id,
                                           "remote": str(info.remoteUri),
                                           "local": str(info.localUri)})

        def onRegState(self, prm: Any) -> None:  # noqa: N802
            agent.outbox.send("registration", {"code": int(prm.code),
                                               "reason": str(prm.reason)})

    return Account()


if __name__ == "__main__":
    sys.exit(main())
