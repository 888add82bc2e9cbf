"""Amounts typed by operators: one clear reading, or a refusal that says what to type."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.money import AmbiguousAmount, big_change, money, parse_rupees


@pytest.mark.parametrize(
    ("text", "paise"),
    [
        ("20", 2000),
        ("20.5", 2050),
        ("20.50", 2050),
        ("₹20.50", 2050),
        (" ₹ 20.50 ", 2050),
        ("Rs 20", 2000),
        ("Rs.20.05", 2005),
        ("1,250", 125000),
        ("1,00,000", 10000000),
        ("100,000", 10000000),
        ("0.01", 1),
    ],
)
def test_clear_amounts_are_read(text: str, paise: int) -> None:
    assert parse_rupees(text) == paise


@pytest.mark.parametrize(
    "text",
    [
        "20,50",
        "2,5",
        "1e3",
        "1_000",
        "20.505",
        "-5",
        "+5",
        "",
        ".50",
        "20.",
        "1,2,3",
        "12,34,5",
        "٢٠",
        "20 50",
        "0x10",
        "nan",
        "inf",
        "1,0000",
    ],
)
def test_ambiguous_or_odd_text_is_refused(text: str) -> None:
    with pytest.raises(AmbiguousAmount):
        parse_rupees(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_what_we_show_reads_back_as_the_same_amount(paise: int) -> None:
    assert parse_rupees(money(paise)) == paise


def test_a_big_change_is_more_than_half_either_way() -> None:
    assert big_change(2000, 3001) and big_change(2000, 999)
    assert not big_change(2000, 3000) and not big_change(2000, 1000)
    assert not big_change(0, 5000)
