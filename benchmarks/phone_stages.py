"""Where a phone turn's time goes: one baresip call to an echo agent, stage by stage.

The same caller audio as ``benchmarks/phone.py`` (human recordings at 8 kHz, echo reply,
500 ms of silence, preemptive replies, the default voice). Every stage is a
``time.monotonic()`` instant on this machine, counted from the caller's end of speech:

1. ``rtp in``: the last loud RTP packet of the clip reaches 127.0.0.1 (sniffed on ``lo``);
2. ``agent``: the last loud 20 ms frame reaches the agent's process (after PJMEDIA's jitter
   buffer, the conference bridge and the pipe);
3. ``silence``: the VAD says the silence began (``PauseStarted`` arrives);
4. ``preview``: the early final's text (``FinalPreview``) arrives: the echo starts;
5. ``ready``: the voice's first audio of the reply is back (it waits for the final);
6. ``final``: the final confirms the text and releases the reply;
7. ``to sip``: the first reply audio is handed to the SIP program's pipe;
8. ``played``: the SIP program's media port plays its first frame (its debug log);
9. ``rtp out``: the first loud RTP packet of the reply (sniffed);
10. ``heard``: the first reply audio in baresip's recording (the benchmark's turn latency).

The end of speech is read off baresip's recording of what it sent (-40 dBFS, as the
benchmark does) and placed on the monotonic clock through the RTP timestamps of the
caller's packets (the recording's sample n is the packet whose timestamp is n past the
first). ``heard`` is placed on that clock the same way (both recordings start together),
so ``heard - rtp out`` is baresip's own jitter buffer and playout. Sniffing ``lo`` needs
root (CAP_NET_RAW); without it stages 1 and 9 are left out and 10 is the benchmark's figure.

Usage: ``python benchmarks/phone_stages.py [--turns 8] [--jitter-buffer-ms N] [--verbose]
[--turn-detection fixed|smart]``
(one call, ~1.5 minutes; ``--jitter-buffer-ms 0``: PJMEDIA's default buffer). Prints the
median and range of each stage and the SIP program's jitter buffer statistics.
"""

from __future__ import annotations

import argparse
import logging
import socket
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine_info import machine  # noqa: E402
from phone import RATE, run_calls, turn_script  # noqa: E402

from harken.config import VadConfig  # noqa: E402
from harken.events import FinalPreview, FinalTranscript, PauseStarted  # noqa: E402
from harken.phone import PhoneAgent, SpeakerVoice  # noqa: E402
from harken.phone.call import PhoneCall  # noqa: E402
from harken.phone.sip_process import SipProcess  # noqa: E402
from harken.phone.timeline import active_spans  # noqa: E402

LOUD_DB = -40.0
RTP_PORT = 46000
SO_TIMESTAMPNS = 35
"""Linux (SCM_TIMESTAMPNS too); Python names neither."""


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


ULAW = _ulaw_table()


def level_db(pcm: np.ndarray) -> float:
    x = pcm.astype(np.float64) / 32768.0
    return float(10 * np.log10(np.mean(x * x) + 1e-12)) if len(x) else -120.0


class RtpSniffer:
    """Timestamps every PCMU RTP packet to or from the agent's RTP ports on ``lo``."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.packets: list[tuple[float, bool, int, float]] = []  # (mono, to agent, ts, dB)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = False

    def start(self) -> bool:
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
            self._sock.bind(("lo", 0))
            # The kernel's receive time: this thread may run late on a loaded machine.
            self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self._sock.settimeout(0.2)
        except (OSError, AttributeError) as exc:
            print(f"(no RTP sniffing: {exc})")
            return False
        self._thread = threading.Thread(target=self._run, name="rtp-sniffer", daemon=True)
        self._thread.start()
        return True

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop:
            try:
                data, ancillary, _, addr = self._sock.recvmsg(2048, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    now = sec + nsec / 1e9 - (time.time() - time.monotonic())
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 14 + 20 + 8 + 12:
                continue
            ip = data[14:]
            if ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            udp = ip[(ip[0] & 0x0F) * 4:]
            src, dst = struct.unpack("!HH", udp[:4])
            rtp = udp[8:]
            to_agent = self.low <= dst < self.high
            if not (to_agent or self.low <= src < self.high) or rtp[0] >> 6 != 2 or \
                    rtp[1] & 0x7F != 0:
                continue
            ts = struct.unpack("!I", rtp[4:8])[0]
            pcm = ULAW[np.frombuffer(rtp[12:], dtype=np.uint8)]
            self.packets.append((now, to_agent, ts, level_db(pcm)))


@dataclass
class Probe:
    """What the agent's side saw, on the monotonic clock."""

    frames: list[tuple[float, float]] = field(default_factory=list)  # (arrival, dB)
    events: list[tuple[float, str]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)  # audio messages to the SIP program
    ready: list[float] = field(default_factory=list)  # first audio of each sentence
    played: list[float] = field(default_factory=list)
    jitter: list[str] = field(default_factory=list)


PROBE = Probe()


class TimedVoice(SpeakerVoice):
    """The default voice, noting when each sentence's first audio comes back."""

    async def sentence(self, text: str) -> Any:
        first = True
        async for chunk in super().sentence(text):
            if first:
                PROBE.ready.append(time.monotonic())
            first = False
            yield chunk


class _LogProbe(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "the agent's audio starts at" in msg:
            PROBE.played.append(float(msg.rsplit("at ", 1)[1].split()[0]))
        elif "jitter buffer delay" in msg:
            PROBE.jitter.append(msg.split(": ", 1)[1])


def instrument() -> None:
    """Wrap the call's frame and event entry points and the SIP pipe (measuring only)."""
    audio, on_event, send = PhoneCall.audio, PhoneCall._on_event, SipProcess.send

    def timed_audio(self: PhoneCall, pcm: bytes, played: int) -> None:
        PROBE.frames.append((time.monotonic(), level_db(np.frombuffer(pcm, "<i2"))))
        audio(self, pcm, played)

    def timed_event(self: PhoneCall, event: Any) -> None:
        now = time.monotonic()
        if isinstance(event, PauseStarted | FinalPreview | FinalTranscript):
            PROBE.events.append((now, type(event).__name__))
        on_event(self, event)

    def timed_send(self: SipProcess, type: str, header: dict[str, Any],
                   payload: bytes = b"") -> bool:
        if type == "audio":
            PROBE.sent.append(time.monotonic())
        return send(self, type, header, payload)

    PhoneCall.audio = timed_audio  # type: ignore[method-assign]
    PhoneCall._on_event = timed_event  # type: ignore[method-assign]
    SipProcess.send = timed_send  # type: ignore[method-assign]


def first_after(times: list[float], t: float, within: float = 3.0) -> float | None:
    return next((x for x in sorted(times) if t <= x <= t + within), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--jitter-buffer-ms", type=int, default=None,
                        help="PhoneAgent(jitter_buffer_ms=); 0: None, PJMEDIA's default "
                        "(default: the agent's default)")
    parser.add_argument("--turn-detection", default="fixed", choices=["fixed", "smart"])
    parser.add_argument("--verbose", action="store_true", help="print every turn's stages")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    voice = TimedVoice()
    instrument()
    for name in ("harken.phone", "harken.worker.child.phone"):  # the SIP program's log
        log = logging.getLogger(name)
        log.setLevel(logging.DEBUG)
        log.addHandler(_LogProbe())
    extra: dict[str, Any] = {}
    if args.jitter_buffer_ms is not None:
        extra["jitter_buffer_ms"] = args.jitter_buffer_ms or None
    vad = VadConfig(pause_events=True, turn_detection=args.turn_detection)
    agent = PhoneAgent(echo=True, listen=f"127.0.0.1:{args.port}", voice=voice, vad=vad,
                       rtp_port=RTP_PORT, **extra)
    sniffer = RtpSniffer(RTP_PORT, RTP_PORT + 40)
    sniffing = sniffer.start()
    agent.start()
    audio, _ = turn_script(args.turns, 0)
    try:
        with tempfile.TemporaryDirectory(prefix="harken-phone-stages-") as tmp:
            (caller,) = run_calls(agent, [audio], Path(tmp))
            sent_rec, heard_rec = caller.sent(), caller.heard()
    finally:
        agent.close()
        sniffer.close()
    ends = [e for s, e in active_spans(sent_rec) if e - s >= 0.1][:args.turns]
    heard = active_spans(heard_rec, min_gap_ms=150)
    inbound = [p for p in sniffer.packets if p[1]]
    outbound = [p for p in sniffer.packets if not p[1]]
    if sniffing and inbound:
        ts0 = inbound[0][2]
        offset = float(np.median([m - (ts - ts0) / RATE - 0.02 for m, _, ts, _ in inbound]))
    else:  # the agent's frames stand in: the end of speech as it reached the agent
        offset = float("nan")
    rows: dict[str, list[float]] = {k: [] for k in (
        "rtp in", "agent", "silence", "preview", "ready", "final", "to sip", "played",
        "rtp out", "heard")}
    loud_in = [m for m, _, _, db in inbound if db > LOUD_DB]
    loud_out = [m for m, _, _, db in outbound if db > LOUD_DB]
    loud_frames = [m for m, db in PROBE.frames if db > LOUD_DB]
    kinds = {k: [m for m, name in PROBE.events if name == k]
             for k in ("PauseStarted", "FinalPreview", "FinalTranscript")}
    for i, end_rec in enumerate(ends):
        nxt = ends[i + 1] if i + 1 < len(ends) else float("inf")
        onset = next((s for s, _ in heard if end_rec < s < nxt), None)
        end = end_rec + offset
        if np.isnan(end):
            continue
        last_in = max((m for m in loud_in if end - 1.0 < m < end + 1.0), default=None)
        last_frame = max((m for m in loud_frames if end - 1.0 < m < end + 1.5), default=None)
        final = first_after(kinds["FinalTranscript"], end)
        if final is None:
            continue
        preview = max((m for m in kinds["FinalPreview"] if end - 0.5 < m < final),
                      default=None)
        stage = {
            "rtp in": last_in, "agent": last_frame,
            "silence": max((m for m in kinds["PauseStarted"] if end - 0.5 < m < final),
                           default=None),
            "preview": preview, "ready": first_after(PROBE.ready, preview or final),
            "final": final, "to sip": first_after(PROBE.sent, final),
            "played": first_after(PROBE.played, final), "rtp out": first_after(loud_out, final),
            "heard": onset + offset if onset is not None else None,
        }
        for k, v in stage.items():
            if v is not None:
                rows[k].append(v - end)
        if args.verbose:
            print(f"  turn {i}: " + ", ".join(f"{k} {(v - end) * 1000:.0f}"
                                              for k, v in stage.items() if v is not None))
    print(f"{len(ends)} turns; ms after the caller's end of speech (median [min, max]):")
    last = 0.0
    for k, values in rows.items():
        if not values:
            print(f"  {k:8s} -")
            continue
        med = float(np.median(values))
        print(f"  {k:8s} {med * 1000:6.0f}  [{min(values) * 1000:5.0f}, "
              f"{max(values) * 1000:5.0f}]  (+{(med - last) * 1000:.0f}, n={len(values)})")
        last = med
    for line in PROBE.jitter[-3:]:
        print(f"  SIP program: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
