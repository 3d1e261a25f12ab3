"""Server metrics in the Prometheus text format (version 0.0.4), without a client library.

:class:`Histogram` counts observations into fixed buckets; :func:`render` writes gauges,
counters and histograms as text for ``GET /metrics``. Pure and single-threaded: the server
updates and renders them on its asyncio event loop.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["LATENCY_BUCKETS_S", "Histogram", "Metric", "percentile", "render"]

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
"""Upper bounds of the latency buckets, in seconds."""


@dataclass
class Histogram:
    """Counts of observed values (seconds) per bucket, plus their sum and count."""

    buckets: Sequence[float] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.buckets = tuple(sorted(self.buckets))
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf

    def observe(self, value: float) -> None:
        """Add one observation, in seconds."""
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


@dataclass(frozen=True)
class Metric:
    """One metric family: ``kind`` is "gauge", "counter" or "histogram".

    ``samples`` maps a label string (``'kind="final"'`` or ``""``) to a number, or for a
    histogram to a :class:`Histogram`.
    """

    name: str
    kind: str
    help: str
    samples: dict[str, float | Histogram]


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


_INF = 'le="+Inf"'


def _labels(labels: str, extra: str = "") -> str:
    inner = ",".join(p for p in (labels, extra) if p)
    return "{" + inner + "}" if inner else ""


def render(metrics: Iterable[Metric]) -> str:
    """Return the Prometheus text exposition of ``metrics``."""
    lines: list[str] = []
    for m in metrics:
        lines.append(f"# HELP {m.name} {m.help}")
        lines.append(f"# TYPE {m.name} {m.kind}")
        for labels, value in m.samples.items():
            if isinstance(value, Histogram):
                running = 0
                for bound, count in zip(value.buckets, value.counts[:-1], strict=True):
                    running += count
                    le = f'le="{_number(bound)}"'
                    lines.append(f"{m.name}_bucket{_labels(labels, le)} {running}")
                running += value.counts[-1]
                lines.append(f"{m.name}_bucket{_labels(labels, _INF)} {running}")
                lines.append(f"{m.name}_sum{_labels(labels)} {_number(value.total)}")
                lines.append(f"{m.name}_count{_labels(labels)} {value.count}")
            else:
                lines.append(f"{m.name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
