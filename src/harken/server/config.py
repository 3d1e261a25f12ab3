"""ServerConfig: the harken server's settings, validated at construction.

Pure data: it imports no server module but the token check (:mod:`.auth`) and the wire
protocol's size limit (:mod:`.protocol`), so every module of the server can read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import EngineConfig, RealtimeConfig, VadConfig, WakeConfig
from ..errors import ConfigError
from .auth import check_token
from .protocol import MAX_CONTROL_BYTES

__all__ = ["OPENAI_REALTIME", "ServerConfig", "check_ports"]


def _positive(name: str, value: object, whole: bool = True) -> None:
    number = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not number or not float(value) > 0:  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be a {'whole number' if whole else 'number'} > 0, "
                          f"got {value!r}")


OPENAI_REALTIME = RealtimeConfig(stable_prefix=True, partial_beam_size=5)
"""The OpenAI Realtime endpoint's settings unless told otherwise: its clients render the deltas
they are sent, and text sent early must be the start of the final, so the final pass continues
from the stable words (``stable_prefix``); partial passes decode with the finals' beam (5), so
fewer misheard words become stable and bound.
``benchmarks/realtime_deltas.py`` (tiny.en, 16 clips), quiet 2-core machine: the first delta
p50 1.88 s after the start of speech instead of 3.88 s with the stable words held (~2.2 s
before deltas were made to add up), 71% of the text early, the same 6.1% WER; with the machine
shared by 5-7 jobs (four runs) 1.9-2.9 s and 7.1-8.2% WER: fewer partial passes run, and
words they misheard stay in the final.
``RealtimeConfig()`` (the library's default, and the harken and RealtimeSTT protocols') holds
the stable words instead: full accuracy and greedy partials, whose CPU a server with many
streams needs."""


@dataclass(frozen=True)
class ServerConfig:
    """Settings of a harken server (validated at construction)."""

    host: str = "127.0.0.1"
    """Interface to bind; the default only accepts connections from this machine."""
    port: int = 8765
    """TCP port; 0 picks a free one (see :attr:`Server.port <harken.server.app.Server.port>`)."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    """Partials and early finals of the harken and RealtimeSTT protocols (``stable_prefix=True``
    sends harken ``append`` text while the person speaks, at a cost in accuracy)."""
    openai_realtime: RealtimeConfig = field(default_factory=lambda: OPENAI_REALTIME)
    """Partials and early finals of OpenAI Realtime sessions; :data:`OPENAI_REALTIME` unless
    given."""
    max_sessions: int = 16
    """Streams and file transcriptions at once; more get "server busy"."""
    max_queued_finals: int = 16
    """Finals one session may have waiting for the engine before it gets "server busy"."""
    max_in_engine: int = 2
    """Requests handed to each engine process at once (the rest wait, fairly, in the host)."""
    engines: int = 0
    """Engine processes sharing the work (each loads the model once); 0: one per 4 CPU
    cores, at least two where there are two (see :func:`harken.server.engine_pool.pool_size`)."""
    engine_threads: int = 0
    """CTranslate2 threads per engine when ``engine.cpu_threads`` is 0; 0: the cores
    divided by the engines, so engines x threads does not oversubscribe the CPU."""
    fast_finals_at: int | None = 1
    """Other finals waiting for or in the engine (all sessions) at which a final takes the
    engine's cheaper greedy pass to keep up (1: whenever finals overlap); None: never.
    benchmarks/server_clients.py, 8 streams: E2F p95 1.13 s with 1, 1.56 s with 2, at
    about 1.5 points more WER."""
    max_audio_frame_bytes: int = 1 << 20
    """The largest binary audio message accepted, in bytes (1 MiB: ~5 s of 48 kHz float32
    stereo)."""
    max_audio_rate: float | None = 10.0
    """The most seconds of audio a client may send per second of wall time, measured from its
    "start" with ``audio_burst_s`` of slack (10.0: ten times real time, generous for live
    audio and for files streamed fast); a faster client gets a "too_fast" error. None: no
    limit."""
    audio_burst_s: float = 30.0
    """Seconds of audio a client may send ahead of ``max_audio_rate``."""
    max_control_bytes: int = MAX_CONTROL_BYTES
    """The largest JSON control message accepted, in bytes."""
    max_upload_bytes: int = 25 << 20
    """The largest file accepted by the OpenAI-compatible endpoint, in bytes (the whole
    request body may hold 1 MiB more, for the form's other fields)."""
    max_upload_seconds: float = 7200.0
    """The longest audio file accepted, in seconds (checked from the file's header before
    it is decoded; files are decoded and transcribed in bounded chunks)."""
    max_form_fields: int = 32
    """Fields an upload's form may have (OpenAI's form has fewer than ten)."""
    header_timeout_s: float = 10.0
    """Seconds a client may take to send a request's headers (and may stay idle between
    keep-alive requests) before its connection is closed."""
    body_timeout_s: float = 30.0
    """Seconds an upload's body may stall (no bytes arriving) before the request fails."""
    max_connections: int = 1024
    """Connections open at once (all ports); lowered at start to what the process's
    open-file limit allows. Beyond it a connection gets 503 and is closed at once."""
    max_connections_per_address: int = 64
    """WebSocket connections one client address may have open (all protocols)."""
    admit_timeout_s: float = 5.0
    """Seconds a WebSocket client has, after connecting, to send a valid start (harken's
    "start", a RealtimeSTT audio frame, an OpenAI Realtime event); it holds no session
    until then."""
    idle_timeout_s: float = 60.0
    """Seconds a streaming WebSocket may send nothing before it is closed (RealtimeSTT's
    control sockets are exempt: they are idle by design)."""
    allow_origins: tuple[str, ...] = ()
    """Browser origins (e.g. ``https://app.example``) that may open WebSockets and post
    uploads besides the server's own page; ``("*",)``: any. Clients that send no Origin
    header (SDKs, command-line tools) are not concerned."""
    allow_hosts: tuple[str, ...] = ()
    """Host names the server answers to besides its bound address, ``localhost`` and IP
    addresses (a guard against DNS rebinding); ``("*",)``: any."""
    send_queue: int = 256
    """Messages waiting for a slow client before it is disconnected."""
    drain_timeout_s: float = 10.0
    """On stop and on shutdown: seconds to wait for the finals still being transcribed."""
    start_timeout_s: float = 120.0
    """Seconds the engine may take to load."""
    token: str | None = field(default=None, repr=False)
    """When set, every route except ``GET /`` and ``/health`` needs ``Authorization: Bearer
    <token>`` (WebSockets may pass ``?token=``); see :mod:`harken.server.auth`."""
    rtstt_ports: tuple[int, int] | None = None
    """(control, data) ports that also serve RealtimeSTT's protocol at ``/``, e.g. (8011, 8012)
    for its client's default URLs; None: only ``/rtstt/control`` and ``/rtstt/data``."""
    rtstt_wake: WakeConfig = field(default_factory=WakeConfig)
    """Wake words of each RealtimeSTT endpoint session (stt-server's ``--wake_words`` and
    friends); each session runs its own detector, and a client may turn it off with
    ``set_parameter use_wake_words false``. Off by default (no words)."""
    speech_engine: str | None = None
    """The speech engine of ``POST /v1/audio/speech`` ("piper", "espeak", "tone",
    "package.module:Class"); None: the best installed one, loaded on the first request."""
    speech_voice: str | None = None
    """Its default voice (OpenAI's voice names map to it); None: the engine's default."""

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be an interface name or address, got {self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) \
                or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an int from 0 to 65535, got {self.port!r}")
        for name in ("max_sessions", "max_queued_finals", "max_in_engine",
                     "max_audio_frame_bytes", "max_control_bytes", "max_upload_bytes",
                     "send_queue", "max_form_fields", "max_connections",
                     "max_connections_per_address"):
            _positive(name, getattr(self, name))
        for name in ("allow_origins", "allow_hosts"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(x, str) and x
                                                       for x in value):
                raise ConfigError(f"{name} must be a tuple of non-empty strings, "
                                  f"got {value!r}")

        for name in ("engines", "engine_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an int >= 0 (0: the default), got {value!r}")
        if self.fast_finals_at is not None:
            _positive("fast_finals_at", self.fast_finals_at)
        if self.max_audio_rate is not None:
            _positive("max_audio_rate", self.max_audio_rate, whole=False)
        for name in ("drain_timeout_s", "start_timeout_s", "audio_burst_s",
                     "max_upload_seconds", "header_timeout_s", "body_timeout_s",
                     "admit_timeout_s", "idle_timeout_s"):
            _positive(name, getattr(self, name), whole=False)
        check_token(self.token)
        for name in ("speech_engine", "speech_voice"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise ConfigError(f"{name} must be a non-empty str or None, got {value!r}")
        check_ports(self.rtstt_ports)
        for name, cls in (("engine", EngineConfig), ("vad", VadConfig),
                          ("realtime", RealtimeConfig),
                          ("openai_realtime", RealtimeConfig), ("rtstt_wake", WakeConfig)):
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, "
                                  f"got {type(getattr(self, name)).__name__}")



def check_ports(ports: object) -> tuple[int, int] | None:
    """Validate ``ServerConfig.rtstt_ports`` and return it.

    Args:
        ports: None, or a (control, data) tuple of TCP ports from 0 to 65535 (0 picks a
            free one); the two must differ unless 0.

    Raises:
        ConfigError: anything else.
    """
    if ports is None:
        return None
    if not isinstance(ports, tuple) or len(ports) != 2 or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 65535 for x in ports):
        raise ConfigError("rtstt_ports must be None or a (control, data) tuple of two ports "
                          f"from 0 to 65535, e.g. (8011, 8012); got {ports!r}")
    if ports[0] == ports[1] != 0:
        raise ConfigError(f"rtstt_ports must be two different ports, got {ports!r}")
    return ports[0], ports[1]
