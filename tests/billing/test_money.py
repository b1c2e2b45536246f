"""Money helpers: fen in, yuan out, and a form field that refuses what is not money."""

import pytest
from django.core.exceptions import ValidationError

from billing.money import YuanFormField, format_fen, yuan_to_fen


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
