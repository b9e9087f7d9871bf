"""Huffman coding: optimal bit counts (checked independently) and byte round trips."""
import itertools
import math

import numpy as np
import pytest

from kdviz.quant import HuffmanCode, encode_symbols, huffman_code_lengths

from _support.reference import huffman_total_bits


def _brute_force_optimum(counts):
    """Smallest sum c_i l_i over all length vectors (1..n-1) meeting Kraft's inequality."""
    n = len(counts)
    best = math.inf
    for lengths in itertools.product(range(1, n), repeat=n):
        if sum(2.0**-l for l in lengths) <= 1.0:
            best = min(best, sum(c * l for c, l in zip(counts, lengths)))
    return best


def test_textbook_example():
    # CLRS, 3rd ed., fig. 16.4: a..f with frequencies 45, 13, 12, 16, 9, 5 (thousands): 224,000 bits
    counts = [45, 13, 12, 16, 9, 5]
    code = HuffmanCode.from_counts(counts)
    assert code.total_bits(counts) == 224
    assert code.lengths == {0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4}


@pytest.mark.parametrize("seed", range(6))
def test_total_bits_equal_the_merge_cost(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 1000, size=rng.integers(2, 300))
    counts[0] = 1
    code = HuffmanCode.from_counts(counts)
    assert code.total_bits(counts) == huffman_total_bits(counts.tolist())
    assert sum(2.0 ** -l for l in code.lengths.values()) == pytest.approx(1.0)  # a complete code


@pytest.mark.parametrize("counts", [[5, 1, 1], [3, 3, 2, 1], [10, 7, 2, 2, 1], [1, 1, 1, 1, 1]])
def test_total_bits_equal_a_brute_force_optimum(counts):
    assert HuffmanCode.from_counts(counts).total_bits(counts) == _brute_force_optimum(counts)


def test_codes_are_prefix_free_and_canonical():
    code = HuffmanCode.from_counts([50, 20, 20, 5, 3, 1, 1])
    words = [format(c, f"0{code.lengths[s]}b") for s, c in code.codes.items()]
    for a, b in itertools.permutations(words, 2):
        assert not b.startswith(a)


@pytest.mark.parametrize("seed", range(4))
def test_encode_decode_round_trip_and_byte_count(seed):
    rng = np.random.default_rng(seed)
    symbols = rng.geometric(0.3, size=5000) - 1
    code, stream = encode_symbols(symbols)
    counts = np.bincount(symbols)
    assert stream.n_bits == code.total_bits(counts) == huffman_total_bits(counts.tolist())
    assert len(stream.data) == math.ceil(stream.n_bits / 8)
    np.testing.assert_array_equal(code.decode(stream), symbols)
    again = HuffmanCode.from_table_bytes(code.table_bytes())  # the code survives as its table
    np.testing.assert_array_equal(again.decode(stream), symbols)


def test_long_codes_decode_bitwise():
    fib = [1, 1]
    while len(fib) < 26:
        fib.append(fib[-1] + fib[-2])  # Fibonacci counts give the deepest possible tree
    code = HuffmanCode.from_counts(fib)
    assert max(code.lengths.values()) == 25
    symbols = np.repeat(np.arange(26), 3)
    np.testing.assert_array_equal(code.decode(code.encode(symbols)), symbols)


def test_single_symbol_and_errors():
    code, stream = encode_symbols(np.full(10, 7))
    assert code.lengths == {7: 1} and stream.n_bits == 10
    np.testing.assert_array_equal(code.decode(stream), np.full(10, 7))
    with pytest.raises(ValueError, match="no symbol"):
        huffman_code_lengths([0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        huffman_code_lengths([3, -1])
    with pytest.raises(ValueError, match="no code"):
        code.encode(np.array([3]))
    with pytest.raises(ValueError, match="empty"):
        HuffmanCode.from_symbols(np.array([], dtype=int))
