"""The unified social credit code (GB 32100-2015) that invoices will carry."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from billing.validators import normalise_uscc, uscc_check_character, validate_uscc

# Published codes of well-known companies (on their business licences).
REAL = ["9144030071526726XG", "91330100716105852F", "914403001922038216", "91110000802100433B"]


@pytest.mark.parametrize("code", REAL)
def test_real_codes_pass(code):
    validate_uscc(code)
    validate_uscc(f" {code.lower()[:9]} {code.lower()[9:]} ")  # pasted with spaces, lower case


@pytest.mark.parametrize("code", REAL)
def test_any_other_check_character_is_refused_in_chinese(code):
    for wrong in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        if wrong == code[17]:
            continue
        with translation.override("zh-hans"):
            with pytest.raises(ValidationError) as exc:
                validate_uscc(code[:17] + wrong)
            assert exc.value.code == "uscc_check"
            assert "校验位" in exc.value.messages[0]


def test_one_changed_character_is_caught():
    code = REAL[0]
    for position in range(17):
        for replacement in "0123456789":
            if replacement == code[position]:
                continue
            changed = code[:position] + replacement + code[position + 1 :]
            with pytest.raises(ValidationError):
                validate_uscc(changed)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9144030071526726X", "uscc_format"),  # 17 characters
        ("9144030071526726XGG", "uscc_format"),  # 19
        ("9144030071526726IG", "uscc_format"),  # I is not used
        ("9144030071526726OG", "uscc_format"),
        ("91A4030071526726XG", "uscc_region"),
        ("", "uscc_format"),
    ],
)
def test_malformed_codes_are_refused(value, reason):
    with pytest.raises(ValidationError) as exc:
        validate_uscc(value)
    assert exc.value.code == reason


def test_check_character_of_the_standards_charset():
    assert uscc_check_character("9144030071526726X") == "G"
    assert normalise_uscc(" 91 3301 ") == "913301"
