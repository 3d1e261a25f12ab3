"""OpenAI Realtime transcription sessions: ``GET /v1/realtime?intent=transcription``.

A WebSocket endpoint that speaks the transcription-session dialect of OpenAI's Realtime API,
so the official ``openai`` package (``client.realtime.connect(extra_query={"intent":
"transcription"})``) and other Realtime clients work against harken. Both dialects are
understood:

- GA: ``session.update`` with ``{"type": "transcription", "audio": {"input": {"format",
  "transcription", "turn_detection", "noise_reduction"}}}``, answered by ``session.updated``;
  the connection opens with ``session.created``.
- Beta (``OpenAI-Beta: realtime=v1``): ``transcription_session.update`` with
  ``input_audio_format`` ("pcm16", "g711_ulaw", "g711_alaw"), ``input_audio_transcription``
  and ``turn_detection``, answered by ``transcription_session.updated``; the connection opens
  with ``transcription_session.created``.

Audio arrives as ``input_audio_buffer.append`` events (base64): pcm16 at 24 kHz by default,
G.711 mu-law / A-law at 8 kHz. harken also accepts ``{"type": "audio/pcm", "rate": R}`` for
any rate from 4000 to 384000 Hz (e.g. 16000, which needs no resampling); the session
echoes such a rate as ``"harken_rate"`` (OpenAI's format field ``rate`` allows only 24000).

Turn detection: with ``server_vad`` (the default) harken's VAD segments the stream through a
:class:`~harken.server.session.StreamSession`: ``speech_started``, then ``speech_stopped`` and
``committed`` when the silence lasts, then ``completed`` with the transcript.
``silence_duration_ms`` maps to :attr:`VadConfig.post_speech_silence_ms
<harken.config.VadConfig.post_speech_silence_ms>` and ``prefix_padding_ms`` to
``pre_roll_ms``; ``threshold`` is echoed but not used (harken's detector is not an energy
gate). ``semantic_vad`` is harken's smart end of turn (``turn_detection="smart"`` with its
``eagerness``; :mod:`harken.core.turn`) when the server has the Smart Turn model, else fixed
turns. With ``turn_detection: null`` the
client commits: every ``input_audio_buffer.commit`` makes one item whose transcript is the
speech the VAD found in the buffer since the last commit (silence is skipped).

Items: each commit (by the VAD or the client) sends ``input_audio_buffer.committed`` with
``previous_item_id``, then ``conversation.item.added`` (beta: ``conversation.item.created``):
a user message whose ``input_audio`` content has ``transcript: null``. When the transcript is
in, ``...transcription.completed`` (or ``.failed``) is followed by ``conversation.item.done``
with the transcript filled in (GA only).

Deltas: the ``conversation.item.input_audio_transcription.delta`` events of an item always
concatenate to its ``completed`` transcript (:mod:`harken.core.deltas`). Only text the final
can no longer change goes out early: the finals already in (earlier utterances of an item the
client commits, pieces of an utterance split at its maximum length, and with
``RealtimeConfig(pause_pieces_ms=...)`` pieces cut at pauses inside an utterance) and, with
``stable_prefix`` (on in the server's default settings,
:data:`~harken.server.config.OPENAI_REALTIME`), the live partials' stable words: the final
pass continues from them, so they go out while the person speaks. Without it the stable
words are a guess the final pass may rewrite, so they are held until the final, and then its
exact remainder goes out.
Deltas can arrive before ``speech_stopped`` and before the item's
``conversation.item.added``: harken transcribes while the person speaks.

``include: ["item.input_audio_transcription.logprobs"]`` adds ``logprobs`` to the deltas
and the completed event: one entry per word (faster-whisper's word probability, the mean of
its tokens' probabilities; ``logprob`` is its natural log). Deltas of early stable words
carry none. ``noise_reduction`` (``input_audio_noise_reduction``) is accepted, checked and
echoed, but harken applies no noise filter.

Errors have OpenAI's shape (``{"type": "error", "error": {"type", "code", "message",
"param", "event_id"}}``). Malformed JSON, unknown events, bad base64 and bad settings are
answered with an error and the session goes on; after :data:`MAX_BAD_EVENTS` malformed
events in a row, an oversize message, or audio faster than ``ServerConfig.max_audio_rate``
the connection is closed. A final the engine cannot transcribe gives
``conversation.item.input_audio_transcription.failed``.

The endpoint is split in three modules: :mod:`.settings` (the session settings and their
events, pure), :mod:`.connection` (one client's connection) and :mod:`.route` (the aiohttp
route). The public names of the three are importable from this package.

Thread: everything runs on the server's asyncio event loop (the aiohttp handler task of each
connection plus its sender task); transcription runs in the shared engine host.
"""

from __future__ import annotations

from .connection import MAX_BAD_EVENTS, RealtimeConnection
from .route import PATH, add_routes
from .settings import EventError, RealtimeSettings, parse_session_update, render_session

__all__ = [
    "MAX_BAD_EVENTS",
    "PATH",
    "EventError",
    "RealtimeConnection",
    "RealtimeSettings",
    "add_routes",
    "parse_session_update",
    "render_session",
]
