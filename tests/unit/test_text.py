"""Generated completion text has exactly the promised token count, however a client re-counts it."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generators_app.generation.text import (
    CORPUS_PATH,
    TextGenerator,
    generate_text,
    load_corpus,
    text_generator,
)
from generators_app.tokens import ENCODING_NAMES, get_encoding


def _assert_exact(encoding_name: str, pieces: list[str], n_tokens: int) -> None:
    encoding = get_encoding(encoding_name)
    assert len(pieces) == n_tokens
    tokens = encoding.encode_ordinary("".join(pieces))
    assert len(tokens) == n_tokens
    # A streaming client that re-tokenizes the concatenated deltas finds the very pieces it was sent.
    assert [encoding.decode_single_token_bytes(t).decode("ascii") for t in tokens] == pieces


@pytest.mark.parametrize("encoding_name", ENCODING_NAMES)
@settings(max_examples=400, deadline=None)
@given(n_tokens=st.integers(min_value=0, max_value=600), seed=st.integers(min_value=0, max_value=2**64))
def test_text_has_exactly_n_tokens_and_resplits_into_its_pieces(
    encoding_name: str, n_tokens: int, seed: int
) -> None:
    pieces = text_generator(encoding_name).generate(n_tokens, random.Random(seed))
    _assert_exact(encoding_name, pieces, n_tokens)


@pytest.mark.parametrize("encoding_name", ENCODING_NAMES)
def test_every_small_length_is_exact(encoding_name: str) -> None:
    generator = text_generator(encoding_name)
    for n_tokens in range(0, 80):
        for seed in range(25):
            _assert_exact(encoding_name, generator.generate(n_tokens, random.Random(seed)), n_tokens)


@pytest.mark.parametrize("encoding_name", ENCODING_NAMES)
def test_long_texts_are_exact(encoding_name: str) -> None:
    rng = random.Random(7)
    for n_tokens in (1000, 4096, 16_384):
        _assert_exact(encoding_name, text_generator(encoding_name).generate(n_tokens, rng), n_tokens)


@pytest.mark.parametrize("encoding_name", ENCODING_NAMES)
def test_each_piece_is_one_token_of_printable_ascii(encoding_name: str) -> None:
    encoding = get_encoding(encoding_name)
    pieces = text_generator(encoding_name).generate(500, random.Random(3))
    for piece in pieces:
        assert piece and piece.isascii() and piece.isprintable()
        assert len(encoding.encode_ordinary(piece)) == 1


@pytest.mark.parametrize("encoding_name", ENCODING_NAMES)
def test_same_seed_same_text(encoding_name: str) -> None:
    generator = text_generator(encoding_name)
    assert generator.generate(300, random.Random(42)) == generator.generate(300, random.Random(42))
    assert generator.generate(300, random.Random(42)) != generator.generate(300, random.Random(43))


def test_generation_continues_the_rng_stream() -> None:
    # Several choices drawn from one rng (n > 1) must differ, and replaying the seed replays them all.
    generator = text_generator("o200k_base")
    rng = random.Random(5)
    first, second = generator.generate(60, rng), generator.generate(60, rng)
    assert first != second
    replay = random.Random(5)
    assert [generator.generate(60, replay), generator.generate(60, replay)] == [first, second]


def test_zero_tokens_and_negative_counts() -> None:
    generator = text_generator("o200k_base")
    assert generator.generate(0, random.Random(0)) == []
    with pytest.raises(ValueError):
        generator.generate(-1, random.Random(0))


@pytest.mark.parametrize("encoding_name", ENCODING_NAMES)
def test_text_reads_like_corpus_prose(encoding_name: str) -> None:
    vocabulary = {word.lower() for line in load_corpus() for word in re.findall(r"[A-Za-z]+", line)}
    for seed in range(50):
        rng = random.Random(seed)
        n_tokens = rng.randint(1, 200)
        text = generate_text(encoding_name, n_tokens, rng)
        assert text[0].isupper(), text  # never starts with a space or punctuation
        assert "  " not in text
        assert not re.search(r"[,.;:?!]{2}", text), text
        assert set(re.findall(r"[a-z]+", text.lower())) <= vocabulary


def test_generate_text_joins_the_pieces() -> None:
    text = generate_text("cl100k_base", 123, random.Random(9))
    assert text == "".join(text_generator("cl100k_base").generate(123, random.Random(9)))
    assert len(get_encoding("cl100k_base").encode_ordinary(text)) == 123


def test_generators_are_built_once_per_encoding() -> None:
    assert text_generator("o200k_base") is text_generator("o200k_base")
    assert text_generator("o200k_base") is not text_generator("cl100k_base")


def test_corpus_is_plain_ascii_and_fully_usable() -> None:
    sentences = load_corpus()
    assert 120 <= len(sentences) <= 250
    assert CORPUS_PATH.read_bytes().isascii()
    assert len(set(sentences)) == len(sentences)
    for encoding_name in ENCODING_NAMES:
        # Sentences are only dropped when they would break the token arithmetic; ours should all survive.
        assert text_generator(encoding_name).sentence_count == len(sentences)


def test_sentences_that_would_not_tokenize_apart_are_dropped() -> None:
    generator = TextGenerator(
        "o200k_base",
        [
            "The cat sat on the mat.",  # fine
            "It is already late in the evening.",  # fine
            "There were 4200 people.",  # digit runs: no
            "It's raining.",  # contraction: no
            "She said \"hello\" twice.",  # quotes: no
            "Well-known facts.",  # hyphen: no
            "Trailing words without a stop",  # no closing punctuation: no
            "Two  spaces here.",  # double space: no
            "Wait,what happened.",  # a word glued to punctuation
        ],
    )
    assert generator.sentence_count == 2
    for n_tokens in range(0, 60):
        _assert_exact("o200k_base", generator.generate(n_tokens, random.Random(n_tokens)), n_tokens)


def test_a_corpus_with_nothing_usable_is_an_error() -> None:
    with pytest.raises(ValueError):
        TextGenerator("o200k_base", ["Nothing 2 use here.", "Or here's."])
