"""RealtimeSTT's server protocol on the harken server, so RealtimeSTT's own client works.

RealtimeSTT (KoljaB/RealtimeSTT 1.1.2) talks to its ``stt-server`` over two WebSockets,
and its ``AudioToTextRecorderClient`` takes their URLs (``control_url``, ``data_url``;
``ws://127.0.0.1:8011`` and ``ws://127.0.0.1:8012`` by default). harken serves both:

- ``GET /rtstt/control`` and ``GET /rtstt/data`` on the server's own port, and
- with ``ServerConfig.rtstt_ports`` (``harken serve --rtstt-ports 8011,8012``) also at
  ``/`` on two extra ports, so a client with its default URLs works unchanged.

Control socket (JSON text both ways)::

    {"command": "set_parameter", "parameter": "language", "value": "en"}
        -> {"status": "success", "message": "Parameter language set to en"}
    {"command": "get_parameter", "parameter": "is_recording", "request_id": 3}
        -> {"status": "success", "parameter": "is_recording", "value": false,
            "request_id": 3}
    {"command": "call_method", "method": "stop", "args": [], "kwargs": {}}
        -> {"status": "success", "message": "Method stop called"}
    anything else -> {"status": "error", "message": "..."}

Data socket: each binary frame is a 4-byte little-endian length ``n``, ``n`` bytes of JSON
metadata (``{"sampleRate": 44100, ...}``) and 16-bit little-endian mono PCM at that rate.
The server answers with JSON text: ``{"type": "vad_detect_start"}`` (listening for speech),
``vad_detect_stop`` and ``recording_start`` (speech began), ``{"type": "realtime", "text":
...}`` (live text), ``recording_stop`` (speech ended), ``{"type": "transcription_start",
"audio_bytes_base64": ...}`` (the utterance's 16 kHz PCM16 audio, as RealtimeSTT sends it),
``{"type": "fullSentence", "text": ...}`` (the final text), ``start_turn_detection`` (silence
began inside an utterance) and ``stop_turn_detection`` (speech resumed, or the utterance
ended). With wake words (``ServerConfig.rtstt_wake``, stt-server's ``--wake_words``; each
session runs its own detector, a client may turn it off with ``use_wake_words``):
``wakeword_detection_start`` (waiting for the wake word), ``wakeword_detected`` and
``wakeword_detection_end`` (it was heard); ``call_method wakeup`` listens for a command as
if it had been heard. A malformed frame gets ``{"type": "error", "message": ..., "code":
...}`` and closes that data socket only.

Modules: :mod:`.protocol` (paths, parameter tables, frame parsing; pure), :mod:`.socket`
(the data and control sockets) and :mod:`.hub` (the endpoints and the control commands).

Pairing: RealtimeSTT's server has one recorder for everyone. harken gives each data socket
its own :class:`~harken.server.session.StreamSession` on the shared engine, and ties a
control socket to its data socket by a session id the client picks and adds to both URLs
(``?session=ID``). Without an id, a control socket reaches the data socket from the same
address that has none either, and only while there is exactly one: with several (clients
behind one proxy, or on one machine) its commands are refused instead of reaching someone
else's. Parameters that change segmentation or the language take effect at the next pause
(no utterance open, no final pending), so no utterance is cut.

Limits: a data socket must send a valid frame within ``ServerConfig.admit_timeout_s`` and
then something every ``idle_timeout_s``; its sample rate may change at most once per
:data:`~harken.server.rtstt.socket.RATE_CHANGE_GAP_S` seconds (each change rebuilds the
resampler); both kinds of socket count toward the per-address WebSocket limit, and the
extra ports run behind the same perimeter as the main one.

Thread: everything runs on the server's asyncio event loop (aiohttp handler tasks plus one
sender task per data socket).
"""

from __future__ import annotations

from ..config import check_ports
from .hub import RtsttHub, add_routes
from .protocol import CONTROL_PATH, DATA_PATH, parse_frame, tidy_text

__all__ = ["CONTROL_PATH", "DATA_PATH", "RtsttHub", "add_routes", "check_ports", "parse_frame",
           "tidy_text"]
