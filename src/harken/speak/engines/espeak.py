"""espeak-ng (the Debian program, GPL-3): robotic but tiny, about 100 languages.

Runs ``espeak-ng --stdout`` once per sentence and streams its WAV output as it is written,
in chunks of about 50 ms. Useless for Mandarin (it reads pinyin with English rules).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from ...errors import ConfigError

__all__ = ["EspeakEngine"]

_WORDS_PER_MINUTE = 175
_HEADER_BYTES = 44


class EspeakEngine:
    """An espeak-ng language voice.

    Args:
        voice: an espeak-ng voice (``en-us``, ``de``, ``fr``, ...).
        pitch: 0 to 99 (espeak-ng's default 50).
        chunk_ms: the size of the chunks read from the program, in milliseconds.
    """

    def __init__(self, voice: str, *, pitch: int = 50, chunk_ms: int = 50) -> None:
        self._voice = voice
        self._pitch = int(pitch)
        self._chunk_ms = int(chunk_ms)
        self._program: str | None = None
        self.sample_rate = 22050

    def load(self) -> None:
        """Find the program."""
        self._program = shutil.which("espeak-ng")
        if self._program is None:
            raise ConfigError("the espeak-ng program is not installed "
                              "(Debian/Ubuntu: apt-get install espeak-ng)")

    def synthesize(self, text: str, speed: float) -> Iterator[NDArray[np.int16]]:
        """Yield int16 chunks while espeak-ng writes them; stop it if iteration stops."""
        assert self._program is not None, "load() first"
        wpm = max(80, min(500, round(_WORDS_PER_MINUTE * speed)))
        proc = subprocess.Popen([self._program, "-v", self._voice, "-s", str(wpm),
                                 "-p", str(self._pitch), "-b", "1", "--stdout"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(text.encode("utf-8"))
            proc.stdin.close()
            header = proc.stdout.read(_HEADER_BYTES)
            if len(header) == _HEADER_BYTES:
                self.sample_rate = struct.unpack("<I", header[24:28])[0]
            block = max(2, self.sample_rate * self._chunk_ms // 1000 * 2)
            tail = b""
            while True:
                data = proc.stdout.read(block)
                if not data:
                    break
                data, tail = tail + data, b""
                if len(data) % 2:
                    data, tail = data[:-1], data[-1:]
                yield np.frombuffer(data, dtype="<i2").astype(np.int16)
            if proc.wait(timeout=10) != 0:
                err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                raise RuntimeError(f"espeak-ng failed (exit code {proc.returncode}): {err}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    def close(self) -> None:
        """Nothing to free."""
