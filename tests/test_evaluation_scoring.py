"""Hand-worked cases for the reference scorers, truncation and answer extraction."""

from __future__ import annotations

from difflib import SequenceMatcher

import pytest

from golongrl.evaluation import score_mrcr, strip_thinking
from golongrl.evaluation.scoring import (
    cover_exact_match,
    docmath_compare_numbers,
    docmath_extract_answer,
    docmath_normalize,
    extract_choice_letter,
    mrcr_bin,
    score_docmath_rule,
    token_f1,
)
from golongrl.evaluation.text import (
    CHAR_TRUNCATION_MARKER,
    extract_after_answer_is,
    extract_final_answer,
    truncate_middle_chars,
    truncate_middle_tokens,
    truncate_mrcr_messages,
)
from golongrl.inference import load_tokenizer

PREFIX = "aZ3kP0q9Xw"


class TestMRCR:
    def test_exact_copy_scores_one(self) -> None:
        assert score_mrcr(PREFIX + "a poem about tapirs", PREFIX + "a poem about tapirs", PREFIX) == 1.0

    def test_missing_prefix_scores_zero_even_if_text_matches(self) -> None:
        assert score_mrcr("a poem about tapirs", PREFIX + "a poem about tapirs", PREFIX) == 0.0

    def test_leading_whitespace_breaks_the_prefix(self) -> None:
        assert score_mrcr(" " + PREFIX + "x", PREFIX + "x", PREFIX) == 0.0

    def test_prefix_only_is_compared_on_the_rest(self) -> None:
        # "" vs "abc": SequenceMatcher ratio 0 (no matching blocks).
        assert score_mrcr(PREFIX, PREFIX + "abc", PREFIX) == 0.0

    def test_prefix_removed_from_both_before_ratio(self) -> None:
        got = score_mrcr(PREFIX + "hello world", PREFIX + "hello there", PREFIX)
        assert got == pytest.approx(SequenceMatcher(None, "hello world", "hello there").ratio())
        # Hand-worked: matching blocks "hello " (6) + "o"/"r"... ratio = 2*M/T with T = 22.
        assert 0 < got < 1

    def test_prefix_twice_only_one_removed(self) -> None:
        got = score_mrcr(PREFIX + PREFIX + "x", PREFIX + "x", PREFIX)
        assert got == pytest.approx(SequenceMatcher(None, PREFIX + "x", "x").ratio())

    def test_bins(self) -> None:
        assert mrcr_bin(4096) == "0-4096"
        assert mrcr_bin(4097) == "4096-8192"
        assert mrcr_bin(131072) == "65536-131072"
        assert mrcr_bin(600_000) == "524288-1048576"


class TestDocMath:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Therefore, the answer is 1,234.5.", "1234.5"),
            ("the answer is **(12.5)**", "12.5"),
            ("The Answer Is $-3.2 million", "$-3.2"),
            ("no number here", "no number here"),
        ],
    )
    def test_extract(self, text: str, expected: str) -> None:
        assert docmath_extract_answer(text) == expected

    @pytest.mark.parametrize(
        ("raw", "value"),
        [
            ("12.5%", 12.5),
            ("$1,234", 1234),
            ("£7 million", 7),
            ("x = 42", 42),
            ("approximately 3.5", 3.5),
            ("15 dollars", 15),
            ("USD 15", 15),
            ("3 x 10^2", 300.0),
            ("yes", True),
            ("The statement is False", False),
            ("7 or 8", 7),
            ("__import__('os').system('echo hacked')", 0),  # the reference eval()ed this
            ("2**99999", 0),
            ("", 0),
        ],
    )
    def test_normalize(self, raw: str, value: object) -> None:
        assert docmath_normalize(raw) == value

    @pytest.mark.parametrize(
        ("pred", "gold", "ok"),
        [
            (100.0, 100.15, True),  # within 0.15 %
            (100.0, 100.16, False),
            (0.125, 12.5, True),  # percent written as a fraction (x100)
            (5.0, 50.0, True),  # any power-of-ten ratio is accepted by the reference
            (3.0, 2.0, False),
            (1.234, 1.2301, True),  # both round up to 1.24
            (1.0, 0.0, False),
            (0.0, 0.0, True),
            ("abc", 1.0, False),
        ],
    )
    def test_compare(self, pred: object, gold: float, ok: bool) -> None:
        assert docmath_compare_numbers(pred, gold) is ok

    def test_rule_score_end_to_end(self) -> None:
        assert score_docmath_rule("<reasoning> Therefore, the answer is 12.5%", 12.5) == 1.0
        assert score_docmath_rule("Therefore, the answer is 13", 12.5) == 0.0
        assert score_docmath_rule("Therefore, the answer is True", True) == 1.0
        assert score_docmath_rule("Therefore, the answer is True", False) == 0.0
        assert score_docmath_rule("Therefore, the answer is 1,000", "1,000") == 1.0


class TestExtractionAndText:
    def test_strip_thinking(self) -> None:
        assert strip_thinking("<think>a</think> answer ") == "answer"
        assert strip_thinking("reasoning without opening tag</think>final") == "final"
        assert strip_thinking("<think>x</think>a<think>y</think>b") == "ab"
        assert strip_thinking("<think>never closed") == "<think>never closed"

    def test_final_answer_takes_last_therefore_line(self) -> None:
        text = "Therefore, the answer is Paris\nWait.\nTherefore the answer is: (Lyon)."
        assert extract_final_answer(text) == "Lyon"
        assert extract_final_answer("line one\n\n  last line.  \n") == "last line"

    def test_corpusqa_extraction(self) -> None:
        assert extract_after_answer_is("So the answer is: 42 units\nmore") == "42 units"
        assert extract_after_answer_is("plain") == "plain"

    def test_cover_exact_match_word_boundaries(self) -> None:
        assert not cover_exact_match("It happened in 2019.", "2")
        assert cover_exact_match("About 1,000 people came", "1000 people")
        assert cover_exact_match("Therefore, the answer is The Beatles!", "beatles")

    def test_token_f1(self) -> None:
        assert token_f1("the cat sat", "a cat sat down") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
        assert token_f1("", "x") == 0.0

    def test_choice_letter(self) -> None:
        assert extract_choice_letter("ANSWER: A\n...\nANSWER: **(C)**") == "C"
        assert extract_choice_letter("The answer is B") is None

    def test_char_truncation(self) -> None:
        assert truncate_middle_chars("abcdef", 10) == "abcdef"
        assert truncate_middle_chars("abcdefghij", 4) == "ab" + CHAR_TRUNCATION_MARKER + "ij"

    def test_token_truncation_keeps_both_ends(self) -> None:
        tok = load_tokenizer("smollm2")
        text = " ".join(f"word{i}" for i in range(400))
        cut = truncate_middle_tokens(text, 50, tok)
        assert cut.startswith("word0") and cut.endswith("word399")
        assert len(tok.encode(cut, add_special_tokens=False)) <= 52

    def test_mrcr_truncation_merges_history(self) -> None:
        tok = load_tokenizer("smollm2")
        history = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "blah " * 200}
            for i in range(10)
        ]
        messages = history + [{"role": "user", "content": "Prepend X to the 2nd poem."}]
        cut = truncate_mrcr_messages(messages, 1500, tok, reserve=100)
        assert len(cut) == 2 and cut[-1] == messages[-1]
        assert cut[0]["content"].startswith("turn 0") and "turn 9" in cut[0]["content"]
        assert truncate_mrcr_messages(messages[:2], 100_000, tok) == messages[:2]
