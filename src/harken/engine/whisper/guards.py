"""Hallucination guards: pure checks and trims on decoded text, shared by both passes.

No faster-whisper import; the inputs are text, word timings and the decoder's scores.

Dropped: text whose window looks like no speech (Whisper's own rule: ``no_speech_prob``
above ``no_speech_threshold`` and ``avg_logprob`` below ``log_prob_threshold``; or
``no_speech_prob`` above ``no_speech_hard_threshold`` alone: tiny.en says "You" on silence,
hum and tones with no_speech_prob 0.9-0.95 and avg_logprob just above -1, while real speech,
even one word, stays below 0.6); text with no letter or digit (". . ."); text too
repetitive to be speech (gzip :func:`compression_ratio` above
``compression_ratio_threshold`` after repeats are trimmed). Trimmed: an n-gram repeated more
than ``max_repeats`` times in a row, cut back to ``max_repeats`` copies (:func:`trim_repeats`).

Dropped too, with ``phantom_phrases`` on: the phrases multilingual Whisper writes on
silence and noise because its training subtitles carried them (:func:`is_phantom`):
subtitle credits anywhere in the text ("字幕由Amara.org社区提供", "明镜与点点栏目"), and
whole texts that are only a sign-off ("谢谢观看", "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
"ご視聴ありがとうございました", "Thanks for watching!").
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Sequence

from ...errors import ConfigError
from ...text.units import join_units, split_units
from ..base import WordTiming
from .options import WhisperOptions

__all__ = ["compression_ratio", "doubtful", "guard_text", "has_words", "is_phantom",
           "kept_word_indices",
           "looks_like_no_speech", "trim_repeats"]

logger = logging.getLogger("harken.engine.faster_whisper")

_HAS_WORD = re.compile(r"[^\W_]")

_WORD_KEY = re.compile(r"[\W_]+")

_NO_LETTER = re.compile(r"[\W\d_]+")
"""Text of digits, punctuation and spaces only."""

_PHANTOM_CREDITS = (
    "amaraorg", "字幕由", "字幕志愿者", "字幕志願者", "字幕制作", "字幕製作", "字幕提供",
    "明镜与点点", "明鏡與點點", "点点栏目", "點點欄目", "订阅明镜", "訂閱明鏡",
    "优优独播剧场", "優優獨播劇場", "yoyotelevisionseries",
)
"""Normalised substrings that mark a subtitle credit: text holding one is dropped."""
_PHANTOM_TEXTS = frozenset({
    "谢谢观看", "謝謝觀看", "感谢观看", "感謝觀看", "谢谢收看", "謝謝收看", "谢谢大家观看",
    "謝謝大家觀看", "请订阅", "請訂閱", "请订阅我的频道", "請訂閱我的頻道", "点赞订阅",
    "點贊訂閱", "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "ご視聴ありがとうございました", "ご視聴ありがとうございます", "チャンネル登録お願いします",
    "チャンネル登録をお願いします", "시청해주셔서감사합니다", "구독과좋아요부탁드립니다",
    "thanksforwatching", "thankyouforwatching", "pleasesubscribe", "likeandsubscribe",
    "pleaselikeandsubscribe", "subtitlesbytheamaraorgcommunity",
})
"""Normalised whole texts that are only a sign-off: text that is one of them is dropped."""


def has_words(text: str) -> bool:
    """True when ``text`` holds a letter or digit (not empty, not only punctuation)."""
    return _HAS_WORD.search(text) is not None


def is_phantom(text: str) -> bool:
    """True when ``text`` is a subtitle credit or nothing but a video sign-off (compared in
    lower case without spaces and punctuation); see the module docstring.
    """
    key = _WORD_KEY.sub("", text.lower())
    return key in _PHANTOM_TEXTS or any(credit in key for credit in _PHANTOM_CREDITS)


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` (UTF-8) over bytes of its zlib compression; 0.0 for empty text.

    Whisper's repetition measure: ordinary speech scores about 1-2, loops score above 2.4.
    """
    raw = text.encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(zlib.compress(raw))


def _run_length(keys: Sequence[str], start: int, n: int) -> int:
    """How many copies of keys[start:start+n] follow each other from ``start``."""
    gram = keys[start:start + n]
    count = 1
    pos = start + n
    while keys[pos:pos + n] == gram:
        count += 1
        pos += n
    return count


def kept_word_indices(words: Sequence[str], max_repeats: int) -> list[int]:
    """Indices of the words to keep so no n-gram repeats more than ``max_repeats`` times.

    Words are compared case-insensitively without punctuation ("Meters." equals "meters").
    The result is stable: trimming the kept words again keeps them all.
    Scanning left to right, a run of more than ``max_repeats`` back-to-back copies of an
    n-gram (the n with the most copies wins, then the shortest) keeps its first
    ``max_repeats - 1`` copies and its last one (which carries the run's closing
    punctuation, as in "bye bye bye bye, see you"); an unfinished copy right after a
    trimmed run (a loop cut off by the token limit) is dropped too. Words that are only
    punctuation never start a run.

    Args:
        words: the words of a transcript, in order.
        max_repeats: the most copies kept, >= 1.

    Returns:
        Increasing indices into ``words``.

    Raises:
        ConfigError: ``max_repeats`` < 1.
    """
    if isinstance(max_repeats, bool) or not isinstance(max_repeats, int) or max_repeats < 1:
        raise ConfigError(f"max_repeats must be an int >= 1, got {max_repeats!r}")
    keys = [_WORD_KEY.sub("", w.lower()) for w in words]
    indices = list(range(len(keys)))
    while True:  # trimming can join copies into a new run: repeat until nothing changes
        kept = [indices[i] for i in _one_pass([keys[i] for i in indices], max_repeats)]
        if len(kept) == len(indices):
            return kept
        indices = kept


def _one_pass(keys: list[str], max_repeats: int) -> list[int]:
    kept: list[int] = []
    i = 0
    total = len(keys)
    while i < total:
        best_n, best_count = 0, 0
        if keys[i]:
            for n in range(1, (total - i) // (max_repeats + 1) + 1):
                count = _run_length(keys, i, n)
                if count > best_count:
                    best_n, best_count = n, count
        if best_count <= max_repeats:
            kept.append(i)
            i += 1
            continue
        end = i + best_n * best_count
        kept.extend(range(i, i + best_n * (max_repeats - 1)))
        kept.extend(range(end - best_n, end))  # the last copy: it has the run's punctuation
        i = end
        tail = 0  # a partial copy that follows the run
        while i + tail < total and tail < best_n and keys[i + tail] == keys[i - best_n + tail]:
            tail += 1
        if tail and (i + tail == total or not any(keys[i + tail:])):
            i += tail
    return kept


def trim_repeats(text: str, max_repeats: int) -> str:
    """Cut every run of more than ``max_repeats`` copies of an n-gram to ``max_repeats``.

    See :func:`kept_word_indices`; words are :func:`~harken.text.units.split_units` units
    (single characters in Chinese and Japanese) joined back by
    :func:`~harken.text.units.join_units`.

    Example:
        ``trim_repeats("the the the the cat", 2)`` gives ``"the the cat"``.
    """
    words = split_units(text)
    return join_units([words[i] for i in kept_word_indices(words, max_repeats)])


def doubtful(text: str, avg_logprob: float, out_of_tokens: bool,
             options: WhisperOptions) -> bool:
    """A decode Whisper would retry at a higher temperature: not confident enough, too
    repetitive, or cut off by the token budget.
    """
    floor = options.log_prob_threshold
    ratio = options.compression_ratio_threshold
    return (out_of_tokens or (floor is not None and avg_logprob < floor)
            or (ratio is not None and bool(text) and compression_ratio(text) > ratio))


def looks_like_no_speech(no_speech_prob: float, avg_logprob: float,
                         options: WhisperOptions, text: str = "") -> bool:
    """Whisper's silence rule (probably no speech, and the text is not confidently decoded),
    or a no-speech probability so high that the text does not matter, or probably no speech
    and ``text`` has no letter: multilingual Whisper writes numbers on white noise
    ("1,5,5,5,5" with no_speech_prob 0.75 and avg_logprob -0.97 from base).
    """
    hard = options.no_speech_hard_threshold
    if hard is not None and no_speech_prob > hard:
        return True
    threshold = options.no_speech_threshold
    if threshold is None or not no_speech_prob > threshold:
        return False
    floor = options.log_prob_threshold
    return floor is None or avg_logprob < floor or _NO_LETTER.fullmatch(text) is not None


def guard_text(text: str, words: list[WordTiming],
               options: WhisperOptions) -> tuple[str, list[WordTiming]]:
    """Trim repeated n-grams, then drop text that is still too repetitive or has no word.

    Word timings are trimmed with the text when they match its words one to one, and
    dropped otherwise (timings that no longer match the text are worse than none).
    """
    max_repeats = options.max_repeats
    if max_repeats is not None and text:
        pieces = split_units(text)
        kept = kept_word_indices(pieces, max_repeats)
        if len(kept) < len(pieces):
            logger.debug("trimmed repeats: %r", text)
            text = join_units([pieces[i] for i in kept])
            words = [words[i] for i in kept] if len(words) == len(pieces) else []
    if not has_words(text):
        return "", []
    if options.phantom_phrases and is_phantom(text):
        logger.debug("dropped a phrase Whisper writes on silence and noise: %r", text)
        return "", []
    threshold = options.compression_ratio_threshold
    if threshold is not None and compression_ratio(text) > threshold:
        logger.debug("dropped text too repetitive to be speech (compression ratio "
                     "%.2f > %s): %r", compression_ratio(text), threshold, text)
        return "", []
    return text, words
