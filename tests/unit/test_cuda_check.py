"""device="cuda" without a usable GPU: one sentence naming the library, version and package."""

from __future__ import annotations

from pathlib import Path

import pytest

from harken.engine.whisper.cuda import CudaLibrary, cuda_libraries, cuda_problem

CUBLAS = CudaLibrary("cuBLAS", "libcublas.so.12", "cublas", "nvidia-cublas-cu12")
CUDNN = CudaLibrary("cuDNN", "libcudnn_ops.so.9", "cudnn", "nvidia-cudnn-cu12==9.*")


def problem(loadable: set[str], count: int = 1, found: str | None = None,
            roots: tuple[str, ...] = ()) -> tuple[str | None, list[str]]:
    tried: list[str] = []

    def load(name: str) -> bool:
        tried.append(name)
        return name in loadable

    return cuda_problem(device_count=lambda: count, libraries=[CUBLAS, CUDNN], load=load,
                        find=lambda _name: found, roots=roots, version="4.8.5"), tried


def test_no_driver_names_libcuda() -> None:
    text, _ = problem(set(), count=0)
    assert text is not None
    assert "libcuda.so.1" in text and "NVIDIA driver" in text and "device='cpu'" in text


def test_driver_without_a_visible_gpu_says_so() -> None:
    text, _ = problem({"libcuda.so.1"}, count=0)
    assert text is not None
    assert "sees no usable GPU" in text and "CUDA_VISIBLE_DEVICES" in text


def test_missing_cublas_names_soname_version_and_pip_package() -> None:
    text, _ = problem({"libcudnn_ops.so.9"})
    assert text is not None
    assert "cuBLAS (libcublas.so.12)" in text
    assert 'pip install "nvidia-cublas-cu12"' in text and "CTranslate2 4.8.5" in text
    assert "found" not in text


def test_other_version_is_called_a_mismatch() -> None:
    text, _ = problem({"libcublas.so.12"}, found="libcudnn_ops.so.8")
    assert text is not None
    assert "cuDNN (libcudnn_ops.so.9)" in text and "found libcudnn_ops.so.8 instead" in text
    assert 'nvidia-cudnn-cu12==9.*' in text


def test_pip_wheel_copy_is_loaded_when_the_loader_path_lacks_it(tmp_path: Path) -> None:
    lib = tmp_path / "nvidia" / "cublas" / "lib" / "libcublas.so.12"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")
    text, tried = problem({str(lib), "libcudnn_ops.so.9"}, roots=(str(tmp_path),))
    assert text is None
    assert tried == ["libcublas.so.12", str(lib), "libcudnn_ops.so.9"]


def test_all_present_is_fine() -> None:
    assert problem({"libcublas.so.12", "libcudnn_ops.so.9"})[0] is None


def test_sonames_are_read_from_the_ctranslate2_library(tmp_path: Path) -> None:
    fake = tmp_path / "libctranslate2.so.4"
    fake.write_bytes(b"\0junk libcublas.so.12\0 libcudnn_cnn.so.9\0libcublas.so.12\0libcuda.so.1")
    libs = cuda_libraries(fake)
    assert [(lib.name, lib.soname, lib.pip_package) for lib in libs] == [
        ("cuBLAS", "libcublas.so.12", "nvidia-cublas-cu12"),
        ("cuDNN", "libcudnn_cnn.so.9", "nvidia-cudnn-cu12==9.*")]
    assert cuda_libraries(tmp_path / "missing") == [CUBLAS]


def test_installed_ctranslate2_names_cublas() -> None:
    pytest.importorskip("ctranslate2")
    from harken.engine.whisper.cuda import _ct2_library

    assert any(lib.name == "cuBLAS" for lib in cuda_libraries(_ct2_library()))


def test_engine_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """"cuda" raises the sentence; "auto" with a GPU but no cuBLAS loads on the CPU."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    import harken.engine.faster_whisper as fw
    from harken.config import EngineConfig
    from harken.errors import CudaUnavailable

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)
    monkeypatch.setattr(fw, "cuda_problem", lambda: "device='cuda' needs cuBLAS")
    with pytest.raises(CudaUnavailable, match="needs cuBLAS"):
        fw.FasterWhisperEngine(EngineConfig(device="cuda"))._device()
    assert fw.FasterWhisperEngine(EngineConfig(device="auto"))._device() == "cpu"
    assert fw.FasterWhisperEngine(EngineConfig(device="cpu"))._device() == "cpu"
    monkeypatch.setattr(fw, "cuda_problem", lambda: None)
    assert fw.FasterWhisperEngine(EngineConfig(device="auto"))._device() == "auto"
