"""The engine pool's parts: one slot per engine process, and the default pool size.

:class:`~harken.server.engine_host.EngineHost` runs ``engines`` engine processes
(:class:`~harken.worker.process.EngineProcess` each). An :class:`EngineSlot` is one of them
as the host sees it: the runner (None while a fresh one is being started), the requests it
holds, and its own restart bookkeeping, so each engine is restarted on its own.

Default size (:func:`pool_size`): one engine per 4 CPU cores, but at least two where there
are two cores, each with ``cores // engines`` CTranslate2 threads, so engines x threads never
exceeds the cores: 1 core -> 1 engine x 1 thread, 2 cores -> 2 x 1, 4 -> 2 x 2, 8 -> 2 x 4,
16 -> 4 x 4. On a GPU (``device="cuda"``) one engine. One tiny.en decode keeps only ~1.2
cores busy whatever its threads, so a second engine uses the core that one leaves idle:
on a quiet 2-core machine (benchmarks/server_clients.py --engines 1x2,2x1) two engines of
one thread against one of two gave telephone E2F p95 1.72 against 2.52 s at 16 streams and
2.89 against 5.52 s at 24, 16 kHz 8 streams p95 0.67 against 0.73 s, one stream 0.52
against 0.56 s.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ..config import EngineConfig
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..engine.base import TranscribeRequest

__all__ = ["CORES_PER_ENGINE", "EngineLike", "EngineSlot", "cpu_cores", "pool_engine", "pool_size"]

CORES_PER_ENGINE = 4
"""CPU cores per engine process in the default pool size."""


class EngineLike(Protocol):
    """What the host needs from an engine runner (an EngineProcess, or a fake in tests)."""

    def start(self) -> None: ...  # noqa: D102

    def submit(self, request: TranscribeRequest) -> None: ...  # noqa: D102

    def cancel(self, request_id: int) -> None: ...  # noqa: D102

    def close(self, timeout: float = 2.0) -> None: ...  # noqa: D102

    @property
    def restarts(self) -> int: ...  # noqa: D102

    @property
    def ready_info(self) -> dict[str, Any]: ...  # noqa: D102



def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS says, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def pool_size(engines: int = 0, threads: int = 0, *, device: str = "cpu",
              cores: int | None = None) -> tuple[int, int]:
    """Resolve ``(engines, threads per engine)``; 0 means "the default" for either.

    Args:
        engines: engine processes wanted, or 0 for the default (see the module docstring).
        threads: CTranslate2 threads per engine, or 0 for ``cores // engines`` (at least 1).
        device: the engine's device; "cuda" defaults to one engine.
        cores: CPU cores to plan for (default: :func:`cpu_cores`).

    Raises:
        ConfigError: a negative or non-int count.
    """
    for name, value in (("engines", engines), ("engine threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be an int >= 0 (0: the default), got {value!r}")
    cores = cpu_cores() if cores is None else max(1, cores)
    if engines == 0:
        engines = 1 if device == "cuda" else max(min(2, cores), cores // CORES_PER_ENGINE)
    if threads == 0:
        threads = max(1, cores // engines)
    return engines, threads


def pool_engine(engine: EngineConfig, engines: int = 0,
                threads: int = 0) -> tuple[EngineConfig, int]:
    """The engine settings each process of a pool runs, and how many processes: the
    :func:`pool_size` for ``engine``'s device, with its threads per engine written into
    ``engine.cpu_threads`` unless that is set already (then it wins over ``threads``).

    Raises:
        ConfigError: a negative or non-int count.
    """
    engines, threads = pool_size(engines, threads, device=engine.device)
    if engine.cpu_threads == 0:
        engine = replace(engine, cpu_threads=threads)
    return engine, engines


@dataclass(eq=False)
class EngineSlot:
    """One engine process of the pool, as the host sees it (loop-only state)."""

    index: int
    engine: EngineLike | None = None
    """The runner; None before start and while a fresh one is being started."""
    sent: set[int] = field(default_factory=set)
    """Global ids of requests this engine holds now."""
    fatal: BaseException | None = None
    """Why this engine is down (its runner gave up), while it is."""
    failures: int = 0
    """Fresh runners lost in a row (reset by an answer)."""
    fresh_starts: int = 0
    """Fresh runners started after this engine failed for good."""
    gave_up: bool = False
    """True once its restarts all failed: it stays down."""
    cool_until: float = 0.0
    """time.monotonic() before which it gets no new work (its child is restarting)."""
    recovery: asyncio.Task[None] | None = None
    answered: int = 0

    @property
    def live(self) -> bool:
        """Running and not failed (it may still be cooling down after a crash)."""
        return self.engine is not None and self.fatal is None

    def ready(self, now: float) -> bool:
        """Live and not cooling down: it may take new work."""
        return self.live and now >= self.cool_until

    @property
    def restarts(self) -> int:
        """Child restarts after crashes plus fresh runners started."""
        return self.fresh_starts + (self.engine.restarts if self.engine is not None else 0)

    @property
    def state(self) -> str:
        """"ok", "restarting" (down or cooling, being restarted) or "failed" (for good)."""
        if self.gave_up:
            return "failed"
        if not self.live or time.monotonic() < self.cool_until:
            return "restarting"
        return "ok"

    def describe(self) -> dict[str, Any]:
        """What /health says about this engine (no process ids or paths)."""
        return {"engine": self.index, "state": self.state, "in_engine": len(self.sent),
                "answered": self.answered, "restarts": self.restarts,
                "error": None if self.fatal is None else str(self.fatal)}
