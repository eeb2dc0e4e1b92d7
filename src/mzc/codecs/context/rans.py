"""The context coder's entropy coder from version 2 on (spec 6.5.5): rANS with a 64-bit state, 32-bit words and
24-bit probabilities, compiled by numba so that no Python runs per symbol.

rANS codes in reverse: the encoder first gathers every symbol's (start, frequency) in decoding order, packed as
start | frequency << 32 in one int64, then codes them backwards; the decoder reads the words forwards and ends in
the encoder's initial state, which it checks (a truncated or damaged stream fails there, if not earlier).
All arithmetic is on int64 values below 2^63: the state stays in [2^31, 2^63).
"""
from __future__ import annotations

import numba
import numpy as np

PRECISION = 24
MASK = (1 << PRECISION) - 1
LOW = 1 << 31  # the state's lower bound (and the encoder's initial state)
WORD = (1 << 32) - 1
JIT = dict(nogil=True, cache=True)


@numba.njit(**JIT)
def encode_backwards(items, state, words, n_words):
    """Code items[::-1] onto the state; renormalisation words go to words[n_words:], returned with the state."""
    bound = (LOW >> PRECISION) << 32
    for k in range(items.size - 1, -1, -1):
        item = items[k]
        start, freq = item & WORD, item >> 32
        if state >= bound * freq:
            words[n_words] = state & WORD
            n_words += 1
            state >>= 32
        state = ((state // freq) << PRECISION) + state % freq + start
    return state, n_words


def finish(state: int, words: np.ndarray, n_words: int) -> bytes:
    """The stream: the final state's two words, then the renormalisation words in reverse order of writing."""
    head = np.array([state >> 32, state & WORD], np.uint32)
    return head.astype("<u4").tobytes() + words[:n_words][::-1].astype("<u4").tobytes()


def start_state(words: np.ndarray) -> tuple[int, int]:
    """(state, next word) of a stream, or (-1, 0) when it has no valid start (plain Python: one fewer compiled
    function to load before a small file decodes)."""
    if words.size < 2:
        return -1, 0
    state = (int(words[0]) << 32) | int(words[1])
    return (state, 2) if LOW <= state < 1 << 63 else (-1, 0)


@numba.njit(**JIT)
def replay(items, words, state, wp):
    """Decode the stream against the items it should hold, without any model: each state's slot must fall in its
    item's [start, start + freq). Returns (state, wp), state -1 at the first item that does not: the encoder's
    check that the words say what it meant (the decoder computes the same tables from the same samples)."""
    bound = np.int64(LOW)
    for k in range(items.size):
        item = items[k]
        start, freq = item & WORD, item >> 32
        slot = state & MASK
        if slot < start or slot >= start + freq:
            return -1, wp
        state = freq * (state >> PRECISION) + slot - start
        if state < bound:
            if wp >= words.size:
                return -1, wp
            state = (state << 32) | np.int64(words[wp])
            wp += 1
    return state, wp
