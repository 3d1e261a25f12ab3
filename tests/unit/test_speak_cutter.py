"""The sentence/clause cutter, fed whole texts and token streams."""

from __future__ import annotations

import pytest

from harken.errors import ConfigError
from harken.speak.cutter import TextCutter, clean_text, cut_text


def feed_tokens(tokens: list[str], **limits: int) -> list[tuple[int, str]]:
    """Feed tokens one by one; return (index of the token that completed it, unit)."""
    cutter = TextCutter(**limits)
    out: list[tuple[int, str]] = []
    for i, token in enumerate(tokens):
        out += [(i, unit) for unit in cutter.feed(token)]
    out += [(len(tokens), unit) for unit in cutter.flush()]
    return out


def tokens_of(text: str) -> list[str]:
    """Split like an LLM stream: words with their leading space."""
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


def test_sentences_are_handed_out_when_the_next_token_starts() -> None:
    tokens = tokens_of("Hello there. How are you today? I am fine!")
    units = feed_tokens(tokens)
    assert [u for _, u in units] == ["Hello there.", "How are you today?", "I am fine!"]
    # "Hello there." is complete when " How" arrives (token 2), not at the end of the text.
    assert units[0][0] == 2
    assert units[1][0] == tokens.index(" I")
    assert units[2][0] == len(tokens)  # the last one needs flush()


def test_first_unit_may_end_at_a_clause_later_ones_keep_the_sentence() -> None:
    text = ("Well, I think that the weather, as you know, is lovely today, and tomorrow, "
            "as they say, it will rain.")
    units = [u for _, u in feed_tokens(tokens_of(text))]
    assert units[0] == "Well, I think that the weather,"  # >= 4 words before the comma
    assert units[1] == "as you know, is lovely today, and tomorrow, as they say, it will rain."
    assert " ".join(units) == text


def test_abbreviations_initials_and_decimals_do_not_end_a_sentence() -> None:
    text = "Dr. Smith met J. R. Tolkien at 3.30 p.m. on St. James street. Then he left."
    assert cut_text(text) == ["Dr. Smith met J. R. Tolkien at 3.30 p.m. on St. James street.",
                              "Then he left."]


def test_closing_quotes_stay_with_their_sentence_and_line_breaks_cut() -> None:
    assert cut_text('He said "stop!" Then silence.\nNew line without a stop\nEnd') == [
        'He said "stop!"', "Then silence.", "New line without a stop", "End"]


def test_long_text_without_punctuation_is_cut_at_spaces_within_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    units = cut_text(text, max_chars=100)
    assert all(len(u) <= 100 for u in units)
    assert " ".join(units) == text


def test_one_hundred_thousand_characters_cut_fast_and_complete() -> None:
    sentence = "This is a sentence with several words in it."
    text = ((sentence + " ") * 2300)[:100_000]
    units = cut_text(text)
    assert set(units[:-1]) == {sentence}
    assert sentence.startswith(units[-1])
    assert " ".join(units) == " ".join(text.split())


def test_control_characters_and_emoji_are_removed_and_silent_units_dropped() -> None:
    assert clean_text("a\x00b\x07c\u200bd😀e\r\nf") == "a b c d e\nf"
    assert cut_text("\x00\x1b[31m 🙂🙂 ... \x7f") == ["[31m ..."]
    assert cut_text("🙂 🎉. !!! ...") == []
    assert cut_text("") == []
    assert cut_text("Grüße aus Köln. 你好，世界。") == ["Grüße aus Köln.", "你好，世界。"]


def test_a_stream_of_single_characters_gives_the_same_units_as_the_whole_text() -> None:
    text = "One, two, three, four, five. Six seven! Eight? Nine; ten: eleven — twelve."
    whole = cut_text(text)
    by_char = [u for _, u in feed_tokens(list(text))]
    assert by_char == whole


def test_bad_limits_and_pieces_are_refused() -> None:
    with pytest.raises(ConfigError):
        TextCutter(max_chars=5)
    with pytest.raises(ConfigError):
        TextCutter(clause_words=0)
    with pytest.raises(TypeError):
        TextCutter().feed(b"bytes")  # type: ignore[arg-type]
