"""Completion text of an exact token count that still reads like prose.

The simulator promises `completion_tokens == n` and streams one token per SSE event, and clients often
re-count the concatenated deltas with tiktoken; so every generated text must tokenize back into exactly the
pieces that were streamed. Instead of trusting that, the generator is built only from pieces for which it
holds:

* the corpus is cut into pre-tokenizer chunks: a word with its leading space, or a run of punctuation;
* a chunk boundary is a boundary of the encoding's pre-tokenizer, so BPE never merges across it, and the
  text's tokens are the chunks' tokens laid end to end. This is checked for every sentence (and every prefix
  of it) when the generator is built, and sentences that break it (digit runs, contractions, ...) are dropped;
* the adjacencies that could merge are never produced: punctuation directly after punctuation, and a word
  without its leading space anywhere but at the very start of the text.

Generation draws whole sentences while they fit, then finishes inside one more sentence with the chunks that
still fit (possibly skipping a word), so the text may end mid-sentence, as a `length` finish does.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from dataclasses import dataclass
from pathlib import Path

import tiktoken

from generators_app.tokens import get_encoding

__all__ = ["TextGenerator", "generate_text", "text_generator"]

CORPUS_PATH = Path(__file__).resolve().parent / "corpus" / "sentences.txt"

# Words with their leading space, or runs of punctuation; a sentence must be exactly a sequence of these.
_CHUNK = re.compile(r" ?[A-Za-z]+|[,.;:?!]+")
_ALLOWED = re.compile(r"[A-Za-z ,.;:?!]+")


@dataclass(frozen=True, slots=True)
class _Chunk:
    pieces: tuple[str, ...]  # the text of each token, in order
    punct: bool  # a punctuation run: may not directly follow another one


@dataclass(frozen=True, slots=True)
class _Sentence:
    opening: tuple[_Chunk, ...]  # as the first sentence of a text: no leading space
    following: tuple[_Chunk, ...]  # after another sentence: with a leading space
    opening_pieces: tuple[str, ...]
    following_pieces: tuple[str, ...]


class TextGenerator:
    """Prose of an exact token count for one encoding; build once per process with `text_generator`."""

    __slots__ = ("_openers", "_sentences", "encoding_name")

    def __init__(self, encoding_name: str, sentences: list[str]) -> None:
        self.encoding_name = encoding_name
        encoding = get_encoding(encoding_name)
        cache: dict[str, _Chunk] = {}
        built = [s for s in (_build_sentence(encoding, line, cache) for line in sentences) if s is not None]
        if not built:
            raise ValueError(f"No usable sentence in the corpus for {encoding_name}")
        _check_joins(encoding, built)
        self._sentences: tuple[_Sentence, ...] = tuple(built)
        # Sentences whose opening word is one token: a text shorter than any sentence starts with one of
        # these, so it never starts with a space.
        self._openers: tuple[_Sentence, ...] = tuple(s for s in built if len(s.opening[0].pieces) == 1)
        if not self._openers:
            raise ValueError(f"No sentence in the corpus opens with a one-token word for {encoding_name}")

    @property
    def sentence_count(self) -> int:
        return len(self._sentences)

    def generate(self, n_tokens: int, rng: random.Random) -> list[str]:
        """Exactly `n_tokens` strings, each the text of one token; joined, they encode back to those tokens.

        Deterministic for a given `rng` state. Runs in a few microseconds per sentence: it only copies
        precomputed pieces.
        """
        if n_tokens < 0:
            raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
        out: list[str] = []
        if n_tokens == 0:
            return out
        sentences = self._sentences
        count = len(sentences)
        random_ = rng.random
        remaining = n_tokens
        sentence = sentences[int(random_() * count)]
        pieces = sentence.opening_pieces
        while len(pieces) <= remaining:
            out += pieces
            remaining -= len(pieces)
            if not remaining:
                return out
            sentence = sentences[int(random_() * count)]
            pieces = sentence.following_pieces

        # The drawn sentence does not fit: take from it the chunks that still fit, in order, then from further
        # sentences if need be. Every sentence has a one-token word, so each pass makes progress.
        if out:
            last_punct = True  # a full sentence ends with punctuation (checked at build)
            chunks = sentence.following
        else:
            if len(sentence.opening[0].pieces) > remaining:
                sentence = self._openers[int(random_() * len(self._openers))]
            last_punct = False
            chunks = sentence.opening
        while True:
            for chunk in chunks:
                size = len(chunk.pieces)
                if size <= remaining and not (chunk.punct and last_punct):
                    out += chunk.pieces
                    remaining -= size
                    last_punct = chunk.punct
                    if not remaining:
                        return out
            chunks = sentences[int(random_() * count)].following


def _build_sentence(encoding: tiktoken.Encoding, line: str, cache: dict[str, _Chunk]) -> _Sentence | None:
    """The sentence's chunks in both variants, or None when its tokens would not be the chunks' tokens."""
    if not line.isascii() or not _ALLOWED.fullmatch(line) or "  " in line:
        return None
    texts = _CHUNK.findall(line)
    if "".join(texts) != line or not texts or texts[0].startswith(" ") or texts[-1][-1] not in ".?!":
        return None
    if any(text[0].isalpha() for text in texts[1:]):  # a word glued to what precedes it
        return None
    variants = []
    for text_list in (texts, [" " + texts[0], *texts[1:]]):
        chunks = []
        for text in text_list:
            chunk = cache.get(text)
            if chunk is None:
                tokens = encoding.encode_ordinary(text)
                pieces = tuple(encoding.decode_single_token_bytes(t).decode("ascii") for t in tokens)
                chunk = _Chunk(pieces, not text.lstrip(" ")[0].isalpha())
                cache[text] = chunk
            chunks.append(chunk)
        # Every prefix must tokenize as its chunks do, since a text may stop after any chunk.
        expected: list[str] = []
        joined = ""
        for text, chunk in zip(text_list, chunks, strict=True):
            joined += text
            expected += chunk.pieces
            actual = [encoding.decode_single_token_bytes(t) for t in encoding.encode_ordinary(joined)]
            if [piece.encode("ascii") for piece in expected] != actual:
                return None
        if any(a.punct and b.punct for a, b in itertools.pairwise(chunks)):
            return None
        variants.append(tuple(chunks))
    opening, following = variants
    if not any(not c.punct and len(c.pieces) == 1 for c in following):
        return None
    return _Sentence(
        opening=opening,
        following=following,
        opening_pieces=tuple(p for c in opening for p in c.pieces),
        following_pieces=tuple(p for c in following for p in c.pieces),
    )


def _check_joins(encoding: tiktoken.Encoding, sentences: list[_Sentence]) -> None:
    """Sentences are laid end to end; check that the join of each with the next keeps the tokens apart (a
    failure here is a bug in the chunking rules, not in the corpus)."""
    for first, second in zip(sentences, [*sentences[1:], sentences[0]], strict=True):
        pieces = [*first.opening_pieces, *second.following_pieces]
        tokens = encoding.encode_ordinary("".join(pieces))
        if len(tokens) != len(pieces):
            raise AssertionError(f"Sentence join does not keep token boundaries: {''.join(pieces)!r}")


def load_corpus(path: Path = CORPUS_PATH) -> list[str]:
    """Corpus sentences: one per line, blank lines and `#` comments ignored."""
    lines = path.read_text(encoding="ascii").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@functools.cache
def text_generator(encoding_name: str) -> TextGenerator:
    """The generator for an encoding, built once per process: building tokenizes and checks the whole
    corpus (tens of milliseconds), which must not happen per request."""
    return TextGenerator(encoding_name, load_corpus())


def generate_text(encoding_name: str, n_tokens: int, rng: random.Random) -> str:
    """Text of exactly `n_tokens` tokens, for callers that do not stream it piece by piece."""
    return "".join(text_generator(encoding_name).generate(n_tokens, rng))
