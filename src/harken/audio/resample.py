"""Streaming sample-rate conversion to harken's 16 kHz.

:class:`StreamResampler` keeps its filter state between chunks, so audio cut into chunks of
any size comes out the same as if it had been resampled in one piece: no clicks at chunk
joins. It uses soxr (``ResampleStream``, quality "HQ"), imported on first use; without soxr
it falls back to linear interpolation in numpy (lower quality, still continuous).

Not thread-safe: one resampler belongs to one stream and is used from one thread at a time
(the source's reader thread, or the feeding thread under the push source's lock).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import AudioFormatError
from ..units import SAMPLE_RATE
from .convert import check_sample_rate

__all__ = ["StreamResampler"]

logger = logging.getLogger(__name__)

_EMPTY = np.zeros(0, dtype=np.float32)


def _empty() -> NDArray[np.float32]:
    return np.zeros(0, dtype=np.float32)


class _LinearStream:
    """Linear interpolation that stays continuous across chunks (the no-soxr fallback).

    Output sample ``k`` lies at input position ``k * in_rate / out_rate``; positions are
    kept as exact integer ratios so long streams do not drift.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._in = in_rate
        self._out = out_rate
        self._n_out = 0  # index of the next output sample
        self._n_in = 0  # input samples seen so far
        self._last = np.float32(0.0)  # the last input sample (index n_in - 1)

    def process(self, x: NDArray[np.float32], last: bool = False) -> NDArray[np.float32]:
        base = self._n_in - 1  # absolute index of buf[0]
        buf = np.concatenate(([self._last], x)).astype(np.float32, copy=False)
        total = self._n_in + x.size
        if last:
            # Every output whose position lies before the end of the input.
            stop = -(-total * self._out // self._in)
        else:
            # Outputs that have both neighbours (index and index + 1) available.
            stop = ((total - 1) * self._out - 1) // self._in + 1 if total > 0 else 0
        count = max(0, stop - self._n_out)
        out = _EMPTY
        if count:
            n = np.arange(self._n_out, self._n_out + count, dtype=np.int64)
            num = n * self._in
            idx = num // self._out
            frac = ((num % self._out) / self._out).astype(np.float32)
            left = idx - base
            right = np.minimum(left + 1, buf.size - 1)
            out = buf[left] + frac * (buf[right] - buf[left])
            self._n_out += count
        if x.size:
            self._last = x[-1]
        self._n_in = total
        return out.astype(np.float32, copy=False)


class StreamResampler:
    """Resample a stream of float32 mono chunks from ``in_rate`` to ``out_rate``.

    Example::

        rs = StreamResampler(48000)
        for chunk in chunks:          # any chunk sizes
            sink.write(rs.process(chunk))
        sink.write(rs.flush())        # the filter's tail, at the end of the stream

    Args:
        in_rate: the input sample rate in Hz (4000 to 384000).
        out_rate: the output sample rate in Hz; harken's 16000 by default.

    Raises:
        AudioFormatError: a rate is out of range or not a whole number.
    """

    def __init__(self, in_rate: int, out_rate: int = SAMPLE_RATE) -> None:
        self.in_rate = check_sample_rate(in_rate)
        self.out_rate = check_sample_rate(out_rate)
        self._stream: Any = None

    @property
    def passthrough(self) -> bool:
        """True when the rates are equal and samples are passed through unchanged."""
        return self.in_rate == self.out_rate

    def _make_stream(self) -> Any:
        try:
            import soxr
        except ImportError:
            logger.debug(
                "soxr is not installed; resampling %d Hz -> %d Hz by linear interpolation",
                self.in_rate, self.out_rate,
            )
            return _LinearStream(self.in_rate, self.out_rate)
        return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32",
                                   quality="HQ")

    def _run(self, x: NDArray[np.float32], last: bool) -> NDArray[np.float32]:
        if self._stream is None:
            self._stream = self._make_stream()
        if isinstance(self._stream, _LinearStream):
            y = self._stream.process(x, last)
        else:
            y = self._stream.resample_chunk(x, last=last)
        return np.ascontiguousarray(y, dtype=np.float32)

    def process(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Resample the next chunk of the stream.

        Args:
            x: 1-D float32 samples at ``in_rate`` (any length, including 0).

        Returns:
            float32 samples at ``out_rate``. The filter delays its output a little, so a
            chunk's output may be shorter than ``len(x) * out_rate / in_rate``; the rest
            comes with later chunks or :meth:`flush`.

        Raises:
            AudioFormatError: ``x`` is not a 1-D float32 array.
        """
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 1:
            raise AudioFormatError(
                "StreamResampler.process needs a 1-D float32 array, got "
                f"{getattr(x, 'dtype', type(x).__name__)} with shape {getattr(x, 'shape', None)}"
            )
        if self.passthrough:
            out: NDArray[np.float32] = np.array(x, dtype=np.float32, copy=True)
            return out
        if x.size == 0:
            return _empty()
        return self._run(np.ascontiguousarray(x), last=False)

    def flush(self) -> NDArray[np.float32]:
        """End the stream and return the samples still held in the filter.

        After a flush the resampler starts a fresh stream on the next :meth:`process`.

        Returns:
            float32 samples at ``out_rate`` (empty for pass-through or an unused resampler).
        """
        if self.passthrough or self._stream is None:
            self._stream = None
            return _empty()
        tail = self._run(_EMPTY, last=True)
        self._stream = None
        return tail
