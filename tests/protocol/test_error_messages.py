"""Error messages are bounded once, for both transports (issue 11, finding 10b)."""

from __future__ import annotations

from fraudgate.protocol.errors import MAX_MESSAGE_BYTES, InvalidInput, ModelNotFound


def test_a_long_message_is_cut_and_says_so():
    message = ModelNotFound("model " + "m" * 100_000).message
    assert len(message.encode()) <= MAX_MESSAGE_BYTES
    assert message.startswith("model mmm") and "cut at" in message


def test_multibyte_text_is_cut_on_a_character_boundary():
    message = InvalidInput("é" * 5000 + "漢" * 5000).message
    assert len(message.encode()) <= MAX_MESSAGE_BYTES
    message.encode("utf-8")  # no broken character


def test_a_short_message_is_kept_whole():
    text = "inputs[0].shape: expected a list of non-negative integers, received [-1]"
    assert InvalidInput(text).message == text == str(InvalidInput(text))
