#!/usr/bin/env bash
# Make a venv OUTSIDE the repo with RealtimeSTT, for benchmarks/latency.py --realtimestt.
#
# Offline apart from the package registries: torch comes from the CPU wheel pip already
# finds locally (torch==2.13.0; any other torch spec would pull a multi-GB CUDA build),
# RealtimeSTT is installed --no-deps with a hand-picked list of what its faster-whisper +
# Silero path imports, and Silero's weights come from the `silero-vad` package (no hub
# download). A torch hub folder built from that package is made too, for RealtimeSTT's
# legacy torch.hub.load("snakers4/silero-vad") path.
#
# Usage: benchmarks/realtimestt/setup.sh            (venv at $RTSTT_VENV or /work/rtstt-venv)
set -euo pipefail

VENV="${RTSTT_VENV:-/work/rtstt-venv}"
PYTHON="${PYTHON:-python3}"
RTSTT_VERSION="${RTSTT_VERSION:-1.1.2}"

case "$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" in
  3.11|3.12) ;;
  *) echo "RealtimeSTT $RTSTT_VERSION needs Python 3.11 or 3.12 (set PYTHON=...)" >&2; exit 2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet)

# 1. torch first, exactly this version (the CPU wheel on disk).
"${PIP[@]}" "torch==2.13.0"

# 2. RealtimeSTT without its dependency list (it pins torchaudio, PyAudio, ... that the
#    faster-whisper path with use_microphone=False never imports), then what it does import.
"${PIP[@]}" --no-deps "realtimestt==$RTSTT_VERSION"
"${PIP[@]}" "faster-whisper==1.2.1" "webrtcvad-wheels==2.0.14" "halo==0.0.31" \
  "colorama==0.4.6" "scipy==1.17.1" "soundfile==0.13.1" "websockets==16.0" \
  "websocket-client==1.9.0" onnxruntime numpy
# silero-vad's own dependency list pulls torchaudio; its model files are all we need.
"${PIP[@]}" --no-deps "silero-vad>=6.2.1"

# 3. PyAudio: RealtimeSTT imports it only to open a microphone (not with
#    use_microphone=False). Install it when PortAudio's headers are there, else skip.
if [ -f /usr/include/portaudio.h ] || { command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] \
    && apt-get install -y -qq portaudio19-dev >/dev/null 2>&1; }; then
  "${PIP[@]}" "PyAudio==0.2.14" || echo "PyAudio did not build; not needed for feed_audio()" >&2
fi

# 4. A torch hub folder for snakers4/silero-vad made from the silero-vad package, so a
#    torch.hub.load of it (RealtimeSTT's legacy Silero backend) finds it without a download.
HUB="$("$VENV/bin/python" -c 'import torch; print(torch.hub.get_dir())')"
REPO="$HUB/snakers4_silero-vad_master"
mkdir -p "$REPO"
cat > "$REPO/hubconf.py" <<'PY'
"""Offline stand-in for snakers4/silero-vad's hubconf, backed by the silero-vad package."""
dependencies = ["torch"]


def silero_vad(onnx=False, force_onnx_cpu=False, opset_version=16, **kwargs):
    import silero_vad as sv

    model = sv.load_silero_vad(onnx=onnx, opset_version=opset_version)
    utils = (sv.get_speech_timestamps, sv.save_audio, sv.read_audio,
             sv.VADIterator, sv.collect_chunks)
    return model, utils
PY

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import RealtimeSTT  # noqa: F401
from RealtimeSTT import AudioToTextRecorder  # noqa: F401
print("RealtimeSTT", md.version("realtimestt"), "torch", md.version("torch"),
      "faster-whisper", md.version("faster-whisper"), "ready")
PY
echo "venv: $VENV"
