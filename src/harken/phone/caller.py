"""BaresipCaller: a real SIP caller for tests and benchmarks (Debian's ``baresip``).

It dials a URI with a WAV file as its microphone and records what it sent and what it
heard, headless and on 127.0.0.1 only (reference/sip-spike.md has the measured config and
its pitfalls: ``aufile`` is a source only, the WAV must be 16-bit mono at the codec rate,
baresip hangs up at the WAV's end, so trailing silence sets the call's length).

Each caller gets its own config folder, a free SIP port and its own RTP port range, so many
can call at once. Nothing starts before :meth:`start`; :meth:`close` stops baresip.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError, PhoneError
from ..worker.child_handle import stop_process

__all__ = ["BaresipCaller", "baresip_available", "read_wav_int16", "write_wav_int16"]

_MODULE_DIRS = ("/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules",
                "/usr/lib/x86_64-linux-gnu/baresip/modules",
                "/usr/lib/aarch64-linux-gnu/baresip/modules")


def baresip_available() -> str | None:
    """Return why baresip cannot be used here, or None when it can."""
    if shutil.which("baresip") is None:
        return "baresip is not installed (Debian package baresip-core)"
    if _module_dir() is None:
        return "baresip's modules were not found in " + ", ".join(_MODULE_DIRS)
    return None


def _module_dir() -> str | None:
    for folder in _MODULE_DIRS:
        if os.path.exists(os.path.join(folder, "aufile.so")):
            return folder
    return None


def write_wav_int16(path: str | Path, audio: NDArray[np.int16], sample_rate: int) -> None:
    """Write mono int16 samples as a WAV file."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.ascontiguousarray(audio, dtype="<i2").tobytes())


def read_wav_int16(path: str | Path) -> tuple[NDArray[np.int16], int]:
    """Read a mono 16-bit WAV file; returns (samples, rate in Hz)."""
    with wave.open(str(path), "rb") as src:
        if src.getsampwidth() != 2 or src.getnchannels() != 1:
            raise ConfigError(f"{path} is not 16-bit mono")
        data = src.readframes(src.getnframes())
        return np.frombuffer(data, dtype="<i2").copy(), src.getframerate()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _netstrings(buffer: bytes) -> list[dict[str, object]]:
    """The complete JSON netstrings (``len:json,``) at the start of ``buffer``."""
    out = []
    while b":" in buffer:
        size, _, rest = buffer.partition(b":")
        if not size.isdigit() or len(rest) < int(size) + 1:
            break
        out.append(json.loads(rest[:int(size)]))
        buffer = rest[int(size) + 1:]
    return out


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BaresipCaller:
    """Calls ``uri`` once, speaking ``audio`` (int16 at 8 kHz), and records the call.

    Args:
        uri: whom to call, e.g. ``sip:agent@127.0.0.1:5070``.
        audio: the caller's microphone: int16 mono samples at 8 kHz. The call ends
            (baresip hangs up) when it runs out, or after ``max_seconds``.
        workdir: an empty folder for the config and the recordings.
        max_seconds: baresip quits (sending BYE) after this many seconds.
        codecs: baresip codec modules to load (``("g711",)``; ``("g722",)`` offers no
            codec a G.711-only agent accepts).
        user: the caller's SIP user name (``sip:<user>@127.0.0.1``).
        control: open baresip's command socket (``ctrl_tcp`` on a free 127.0.0.1 TCP
            port) so that :meth:`command` can drive the call (send DTMF, hang up).
    """

    def __init__(self, uri: str, audio: NDArray[np.int16], workdir: str | Path, *,
                 max_seconds: float = 60.0, codecs: tuple[str, ...] = ("g711",),
                 user: str = "caller", control: bool = False) -> None:
        self.uri = uri
        self._audio = np.asarray(audio, dtype=np.int16)
        self.workdir = Path(workdir)
        self.max_seconds = max_seconds
        self._codecs = codecs
        self._user = user
        self._proc: subprocess.Popen[bytes] | None = None
        self._control_port = _free_tcp_port() if control else None
        self.started_at = 0.0
        """time.monotonic() when baresip was started."""

    def start(self) -> None:
        """Write the config and start baresip dialling.

        Raises:
            PhoneError: baresip is unavailable or could not be started.
        """
        reason = baresip_available()
        if reason is not None:
            raise PhoneError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "snd").mkdir(exist_ok=True)
        write_wav_int16(self.workdir / "mic.wav", self._audio, 8000)
        rtp = 20000 + 2 * (_free_udp_port() % 20000)
        modules = "\n".join(f"module {name}.so" for name in self._codecs)
        if self._control_port is not None:
            modules += f"\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{self._control_port}"
        (self.workdir / "config").write_text(f"""poll_method epoll
sip_listen 127.0.0.1:{_free_udp_port()}
net_interface 127.0.0.1
call_local_timeout 120
call_max_calls 4
audio_source aufile,{self.workdir / 'mic.wav'}
audio_player aubridge,sink
audio_alert aubridge,alert
audio_level no
ausrc_format s16
auplay_format s16
auenc_format s16
audec_format s16
audio_buffer 20-160
rtp_tos 0
rtp_ports {rtp}-{rtp + 40}
rtcp_mux no
jitter_buffer_delay 1-5
rtp_stats no
module_path {_module_dir()}
{modules}
module sndfile.so
module aufile.so
module aubridge.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
snd_path {self.workdir / 'snd'}
""")
        (self.workdir / "accounts").write_text(
            f"<sip:{self._user}@127.0.0.1>;regint=0;answermode=manual\n")
        (self.workdir / "contacts").write_text("")
        log = open(self.workdir / "baresip.log", "wb")  # noqa: SIM115 - closed by the child's exit
        try:
            self._proc = subprocess.Popen(
                ["baresip", "-f", str(self.workdir), "-e", f"/dial {self.uri}",
                 "-t", str(int(self.max_seconds))],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise PhoneError(f"cannot start baresip: {exc}") from exc
        finally:
            log.close()
        self.started_at = time.monotonic()

    def wait(self, timeout: float) -> int | None:
        """Wait for baresip to end (the call is over); its exit code, None on timeout."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """Stop baresip (SIGTERM, then SIGKILL); idempotent."""
        if self._proc is not None:
            stop_process(self._proc, 2.0, name="baresip")

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> str:
        """Run one of baresip's commands in the live call (``"sndcode", "123#"`` sends DTMF);
        returns its answer text. Needs ``control=True``.

        Raises:
            PhoneError: no control socket, or baresip did not answer within ``timeout`` s.
        """
        if self._control_port is None:
            raise PhoneError("BaresipCaller.command needs control=True")
        body = json.dumps({"command": name, "params": params, "token": "harken"}).encode()
        try:
            with socket.create_connection(("127.0.0.1", self._control_port), timeout) as sock:
                sock.sendall(b"%d:%s," % (len(body), body))
                buffer = b""
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    for reply in _netstrings(buffer):
                        if reply.get("response"):
                            return str(reply.get("data", ""))
        except OSError as exc:
            raise PhoneError(f"baresip's control socket: {exc}") from exc
        raise PhoneError(f"baresip did not answer {name!r} within {timeout} s")

    @property
    def log(self) -> str:
        """The console output of baresip so far."""
        try:
            return (self.workdir / "baresip.log").read_text(errors="replace")
        except OSError:
            return ""

    def _dump(self, kind: str) -> NDArray[np.int16]:
        paths = sorted(glob.glob(str(self.workdir / "snd" / f"dump-*-{kind}.wav")))
        if not paths:
            return np.zeros(0, dtype=np.int16)
        audio, _ = read_wav_int16(paths[-1])
        return audio

    def heard(self) -> NDArray[np.int16]:
        """What baresip heard from the agent (int16, 8 kHz); empty if nothing."""
        return self._dump("dec")

    def sent(self) -> NDArray[np.int16]:
        """What baresip sent (its microphone as it left, int16, 8 kHz)."""
        return self._dump("enc")
