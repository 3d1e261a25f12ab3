"""Can CTranslate2 run on a CUDA GPU here? Checked before a model is loaded on one.

Runs inside the engine process, in :meth:`~harken.engine.faster_whisper.FasterWhisperEngine.load`.
CTranslate2 opens the CUDA libraries lazily: with ``device="cuda"`` and no driver it fails
with "CUDA driver version is insufficient", and with the driver but no cuBLAS the model even
loads and the first transcription aborts the process (the parent then sees a broken pipe).
:func:`cuda_problem` finds those cases first and says, in one sentence, which library is
missing, the version this CTranslate2 build expects, and the pip package that provides it.

Which libraries: the sonames the installed CTranslate2 library names (``libcublas.so.12``
for the 4.x wheels; ``libcudnn*.so.N`` for builds that use cuDNN), read from the shared
library itself, so the expected version follows the installed build. A library that is not
on the loader's path but ships in its pip package (``site-packages/nvidia/<name>/lib``, the
``nvidia-cublas-cu12`` / ``nvidia-cudnn-cu12`` wheels) is loaded from there, process-wide, so
CTranslate2 then finds it: installing the pip package is enough, no ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import mmap
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CudaLibrary", "cuda_libraries", "cuda_problem"]

logger = logging.getLogger("harken.engine.faster_whisper")

_SONAME = re.compile(rb"lib(cublas|cudnn)(?:_[a-z_]+)?\.so\.(\d+)")


@dataclass(frozen=True)
class CudaLibrary:
    """One CUDA library CTranslate2 opens at run time."""

    name: str
    """"cuBLAS" or "cuDNN"."""
    soname: str
    """The file the loader looks for, e.g. "libcublas.so.12"."""
    pip_dir: str
    """Its folder under ``site-packages/nvidia`` in the NVIDIA pip wheels."""
    pip_package: str
    """The pip package that provides it, e.g. "nvidia-cublas-cu12"."""


def _library(kind: str, soname: str, major: int) -> CudaLibrary:
    if kind == "cublas":
        return CudaLibrary("cuBLAS", soname, "cublas", f"nvidia-cublas-cu{major}")
    # cuDNN's own major (8, 9) is not CUDA's; its wheels are built for CUDA 12 today.
    return CudaLibrary("cuDNN", soname, "cudnn", f"nvidia-cudnn-cu12=={major}.*")


def cuda_libraries(ct2_library: Path | None) -> list[CudaLibrary]:
    """The cuBLAS/cuDNN libraries the CTranslate2 shared library names (by soname).

    Args:
        ct2_library: the ``libctranslate2`` file; None or unreadable: the 4.x wheels' needs
            (cuBLAS for CUDA 12).
    """
    found: dict[str, CudaLibrary] = {}
    try:
        if ct2_library is None:
            raise OSError("no CTranslate2 library found")
        with open(ct2_library, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) \
                as data:
            for match in _SONAME.finditer(data):
                soname = match.group(0).decode()
                found.setdefault(soname, _library(match.group(1).decode(), soname,
                                                  int(match.group(2))))
    except (OSError, ValueError) as exc:
        logger.debug("could not read the CUDA sonames of %s: %s", ct2_library, exc)
    return list(found.values()) or [_library("cublas", "libcublas.so.12", 12)]


def _ct2_library() -> Path | None:
    import ctranslate2

    folder = Path(ctranslate2.__file__).parent
    for candidate in (*folder.parent.glob("ctranslate2.libs/libctranslate2*.so*"),
                      *folder.glob("libctranslate2*.so*")):
        return candidate
    return None


def _load(path: str) -> bool:
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


def _pip_copies(lib: CudaLibrary, roots: Iterable[str]) -> list[str]:
    return [str(p) for root in roots
            for p in sorted(Path(root, "nvidia", lib.pip_dir, "lib").glob(lib.soname))]


def cuda_problem(*, device_count: Callable[[], int] | None = None,
                 libraries: list[CudaLibrary] | None = None,
                 load: Callable[[str], bool] = _load,
                 find: Callable[[str], str | None] = ctypes.util.find_library,
                 roots: Iterable[str] | None = None, version: str | None = None) -> str | None:
    """Why CTranslate2 cannot use a CUDA GPU here, in one sentence; None when it can.

    Loads each missing library from its pip package where one is installed (see the module
    docstring). The arguments exist for tests; by default they are the installed
    CTranslate2 (its device count, the libraries it names, its version), ``ctypes`` and
    ``sys.path``.
    """
    if version is None or device_count is None or libraries is None:
        import ctranslate2

        version = version or ctranslate2.__version__
        device_count = device_count or ctranslate2.get_cuda_device_count
        libraries = libraries if libraries is not None else cuda_libraries(_ct2_library())
    where = f"CTranslate2 {version} (faster-whisper's runtime)"
    if device_count() < 1:
        if not load("libcuda.so.1"):
            return (f"device='cuda' needs an NVIDIA GPU and its driver, but the driver's "
                    f"library libcuda.so.1 is not installed, so {where} sees no GPU: install "
                    "the NVIDIA driver, or use device='cpu' (or 'auto', which picks the GPU "
                    "only when CUDA works)")
        return (f"device='cuda' found the NVIDIA driver, but {where} sees no usable GPU: "
                "the driver may be older than the CUDA 12 runtime needs, or "
                "CUDA_VISIBLE_DEVICES hides the GPU (check nvidia-smi); or use device='cpu'")
    for lib in libraries:
        if load(lib.soname) or any(load(path) for path in _pip_copies(
                lib, sys.path if roots is None else roots)):
            continue
        other = find(lib.soname.split(".so")[0].removeprefix("lib"))
        instead = f" (found {other} instead, a different version)" if other else ""
        return (f"device='cuda' needs {lib.name} ({lib.soname}), which {where} could not "
                f"load{instead}: install it with pip install \"{lib.pip_package}\" (or the "
                "matching CUDA/cuDNN release and put it on LD_LIBRARY_PATH), or use "
                "device='cpu'")
    return None
