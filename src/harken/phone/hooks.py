"""Where the user's phone hooks run: threads of their own, never the agent's event loop.

A hook that blocks (an LLM request, a database) must not stall any call's audio, so
:class:`Workers` runs hooks on named threads with a bounded queue. The agent keeps two:
one thread for event hooks (``on_call_start``, ``on_partial``, ``on_dtmf``, ...: one thread
keeps them in order) and a few for ``on_turn`` (one slow reply delays no other call).

:func:`reply_pieces` turns what ``on_turn`` returned (a string, an iterable or async
iterable of text pieces, a coroutine, or None) into an async iterator of text pieces; a
synchronous iterator is advanced on a worker thread, so a generator that waits for an
LLM's tokens blocks nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import queue
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any

__all__ = ["Workers", "reply_pieces"]

logger = logging.getLogger("harken.phone")

_Job = tuple[Callable[..., Any], tuple[Any, ...], "concurrent.futures.Future[Any]"]


class Workers:
    """``count`` threads named ``name`` running submitted functions, first in first out.

    Args:
        name: the threads' name (numbered when more than one).
        count: how many threads.
        max_queued: jobs that may wait; :meth:`submit` beyond it fails the job's future
            with ``queue.Full`` at once (the caller logs it).
    """

    def __init__(self, name: str, count: int, max_queued: int = 256) -> None:
        self._name = name
        self._count = count
        self._queue: queue.Queue[_Job | None] = queue.Queue(max_queued)
        self._threads: list[threading.Thread] = []
        self._closed = False

    def start(self) -> None:
        """Start the threads."""
        for i in range(self._count):
            name = self._name if self._count == 1 else f"{self._name}-{i + 1}"
            thread = threading.Thread(target=self._run, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Queue ``fn(*args)``; its future holds the result or the exception."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self._closed:
            future.set_exception(RuntimeError("the phone agent is closed"))
            return future
        try:
            self._queue.put_nowait((fn, args, future))
        except queue.Full as exc:
            future.set_exception(exc)
        return future

    def close(self, timeout: float) -> None:
        """Stop taking jobs, cancel queued ones, and join the threads within ``timeout`` s.

        A thread stuck in a user's hook is left behind (daemon) with a warning.
        """
        self._closed = True
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[2].cancel()
        deadline = time.monotonic() + timeout
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=max(0.01, deadline - time.monotonic()))
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(max(0.01, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("a phone hook did not return within %.1f s of close(); "
                               "its thread %s is left running", timeout, thread.name)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            fn, args, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # goes to whoever awaits the future
                future.set_exception(exc)


async def reply_pieces(result: Any, workers: Workers) -> AsyncIterator[str]:
    """Yield the text pieces of what ``on_turn`` returned.

    Raises:
        TypeError: it returned something that is not text, pieces of text or None.
    """
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return
    if isinstance(result, str):
        yield result
    elif isinstance(result, AsyncIterable):
        async for piece in result:
            yield _text(piece)
    elif isinstance(result, Iterable):
        iterator: Iterator[Any] = iter(result)
        done = object()
        while True:
            piece = await asyncio.wrap_future(workers.submit(next, iterator, done))
            if piece is done:
                return
            yield _text(piece)
    else:
        raise TypeError(f"on_turn returned {type(result).__name__}; return a str, an "
                        "iterable or async iterable of str, or None")


def _text(piece: Any) -> str:
    if not isinstance(piece, str):
        raise TypeError(f"on_turn yielded {type(piece).__name__}; yield str pieces")
    return piece
