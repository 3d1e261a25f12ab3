"""Model files shipped inside installed packages, and onnxruntime sessions for them.

Files are found with ``importlib.util.find_spec`` (no package is imported, so a package
whose import pulls torch or its own dependencies costs nothing). Sessions run on the CPU
with one intra-op and one inter-op thread, so a small model does not compete with the
transcription engine for cores. onnxruntime is imported only in :func:`cpu_session`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from .errors import BackendNotInstalled, ConfigError

logger = logging.getLogger(__name__)

__all__ = ["cpu_session", "find_packaged_file"]


def find_packaged_file(candidates: Sequence[tuple[str, Sequence[str]]]
                       ) -> tuple[str | None, list[str]]:
    """Return the first existing file of (top-level package, path parts inside it).

    Returns:
        (the path, or None when none exists; every path that was tried).
    """
    searched: list[str] = []
    for package, parts in candidates:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            path = os.path.join(location, *parts)
            searched.append(path)
            if os.path.isfile(path):
                return path, searched
    return None, searched


def cpu_session(path: str | None, find: Callable[[], str], extra: str, purpose: str) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path`` on one CPU thread.

    Args:
        path: the .onnx file; None: ``find()`` returns it.
        find: locates the packaged file (raises ModelFileNotFound).
        extra: the harken extra that installs onnxruntime, for the error message.
        purpose: what needs the model ("The Silero VAD"), for messages.

    Raises:
        BackendNotInstalled: onnxruntime is missing (the message names ``extra``).
        ModelFileNotFound: no path and ``find`` found nothing.
        ConfigError: ``path`` is not a file.
    """
    if path is None:
        path = find()
    elif not os.path.isfile(path):
        raise ConfigError(f"model_path {path!r} is not a file; give {purpose}'s .onnx file or "
                          "None to use the one an installed package ships")
    logger.debug("loading %s from %s", purpose, path)
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendNotInstalled("onnxruntime", extra, purpose) from exc
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(path, sess_options=options,
                                        providers=["CPUExecutionProvider"])
