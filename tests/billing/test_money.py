"""Money helpers: fen in, yuan out, and the one strict parser (and its form field) that refuses
what is not plainly money."""

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.money import MAX_YUAN, YuanFormField, format_fen, yuan_to_fen


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0.00"), (5, "0.05"), (12345, "123.45"), (100000000, "1,000,000.00"), (-250, "-2.50")],
)
def test_format_fen(fen, text):
    assert format_fen(fen) == text


@pytest.mark.parametrize(("yuan", "fen"), [("0", 0), ("1.5", 150), ("12.34", 1234), (3, 300)])
def test_yuan_to_fen(yuan, fen):
    assert yuan_to_fen(yuan) == fen


def test_yuan_to_fen_refuses_sub_fen():
    with pytest.raises(ValidationError):
        yuan_to_fen("0.001")


def test_form_field_cleans_to_integer_fen():
    field = YuanFormField()
    assert field.clean("19.90") == 1990
    assert isinstance(field.clean("19.90"), int)


@pytest.mark.parametrize("bad", ["-0.01", "abc", "1.234"])
def test_form_field_refuses_bad_amounts(bad):
    with pytest.raises(ValidationError):
        YuanFormField().clean(bad)


def test_form_field_bounds():
    field = YuanFormField(min_fen=100, max_fen=100000)
    with pytest.raises(ValidationError):
        field.clean("0.99")
    with pytest.raises(ValidationError):
        field.clean("1000.01")
    assert field.clean("1000") == 100000


# --- One strict parser: plain decimal yuan, ASCII digits, at most two decimals ---------------


@pytest.fixture(autouse=True)
def _speak_chinese():
    with translation.override("zh-hans"):
        yield


def refusal(text, **field_kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as exc:
        YuanFormField(**field_kwargs).clean(text)
    return exc.value


@pytest.mark.parametrize("text", ["1e5", "1E5", "1.5e3", "2e-2", "-1e5", "1E+5"])
def test_exponent_amount_is_refused(text):
    error = refusal(text, min_fen=None)
    assert error.code == "exponent"
    assert "指数" in error.messages[0]
    with pytest.raises(ValidationError):
        yuan_to_fen(text, allow_negative=True)


@pytest.mark.parametrize(
    "text",
    [
        "１００",  # full-width digits, as a Chinese input method types them
        "１２．５０",
        "12．50",  # a full-width decimal point
        "١٢٣",  # Arabic-Indic digits
        "१२३",  # Devanagari digits
        "𝟏𝟐",  # mathematical bold digits
        "−5",  # the minus sign character, not a hyphen-minus
    ],
)
def test_full_width_digits_are_refused(text):
    error = refusal(text, min_fen=None)
    assert error.code == "not_ascii"
    assert "半角" in error.messages[0]


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        ("1,000", "separator", "千位分隔符"),
        ("1,000.00", "separator", "千位分隔符"),
        ("1_000", "separator", "千位分隔符"),
        # A full-width comma is refused first for not being ASCII.
        ("1，000", "not_ascii", "半角"),
    ],
)
def test_thousands_separators_are_refused(text, code, says):
    error = refusal(text)
    assert error.code == code
    assert says in error.messages[0]


@pytest.mark.parametrize("text", ["1 000", "12. 50", "1\t0"])
def test_blanks_inside_an_amount_are_refused(text):
    error = refusal(text)
    assert error.code == "blank"
    assert "空格" in error.messages[0]


@pytest.mark.parametrize("text", ["NaN", "nan", "sNaN", "Infinity", "-inf", "inf"])
def test_nan_and_infinity_are_refused(text):
    assert refusal(text, min_fen=None).code == "invalid"


def test_plus_sign_is_refused():
    error = refusal("+5")
    assert error.code == "plus"
    assert "加号" in error.messages[0]


def test_minus_sign_only_where_negative_amounts_are_allowed():
    assert YuanFormField(min_fen=None).clean("-12.50") == -1250
    assert YuanFormField(min_fen=-100_000).clean("-0.01") == -1
    error = refusal("-12.50", min_fen=1)
    assert (error.code, error.messages[0]) == ("min_value", "金额不能为负数。")


@pytest.mark.parametrize("text", ["1.234", "0.001", "-1.999"])
def test_more_than_two_decimals_are_refused(text):
    error = refusal(text, min_fen=None)
    assert error.code == "max_decimal_places"


@pytest.mark.parametrize("text", [".5", "5.", "1.2.3", "abc", "-", "1-", "0x10"])
def test_other_text_is_refused_as_not_an_amount(text):
    error = refusal(text, min_fen=None)
    assert (error.code, error.messages[0]) == ("invalid", "请输入以元为单位的金额，例如 12.50。")


@pytest.mark.parametrize("text", ["12元", "¥12"])
def test_units_and_currency_signs_are_refused_as_not_ascii(text):
    assert refusal(text, min_fen=None).code == "not_ascii"


def test_surrounding_blanks_are_trimmed():
    assert YuanFormField().clean("  12.50 ") == 1250
    assert YuanFormField().clean("\u300012.50\u3000") == 1250  # an ideographic space


def test_amount_beyond_any_real_one_is_refused():
    assert refusal("1000000000000").code == "max_value"
    assert refusal("9" * 40).code == "max_value"
    assert yuan_to_fen("999999999999.99") == 99_999_999_999_999


PLAIN = re.compile(r"-?[0-9]+(\.[0-9]{1,2})?", re.ASCII)
AMOUNT_CHARACTERS = "0123456789.-+eE,_ \t１２．－٣" + "\u3000abn"


@settings(max_examples=500)
@given(st.text(alphabet=AMOUNT_CHARACTERS, max_size=16), st.booleans())
def test_parser_accepts_exactly_the_plain_form(text, allow_negative):
    stripped = text.strip()
    plain = PLAIN.fullmatch(stripped) is not None
    expected_ok = (
        plain
        and (allow_negative or not stripped.startswith("-"))
        and abs(Decimal(stripped)) < MAX_YUAN
    )
    if expected_ok:
        expected = Decimal(stripped) * 100
        assert yuan_to_fen(text, allow_negative=allow_negative) == expected
    else:
        with pytest.raises(ValidationError):
            yuan_to_fen(text, allow_negative=allow_negative)


@given(st.integers(min_value=-(10**14 - 1), max_value=10**14 - 1))
def test_parser_round_trips_with_format_fen(fen):
    typed = format_fen(fen).replace(",", "")
    assert yuan_to_fen(typed, allow_negative=True) == fen
    assert YuanFormField(min_fen=None).clean(typed) == fen
    # What the form shows again for a value is what it reads back.
    field = YuanFormField(min_fen=None)
    assert field.clean(field.prepare_value(fen)) == fen


@given(st.from_regex(PLAIN, fullmatch=True).filter(lambda t: abs(Decimal(t)) < MAX_YUAN))
def test_every_plain_amount_is_read_exactly(text):
    assert yuan_to_fen(text, allow_negative=True) == Decimal(text) * 100
