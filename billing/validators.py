"""Validators and normal forms of what finance and merchants type: references such as bank
serial and invoice numbers, and the unified social credit code (统一社会信用代码)."""

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# GB 32100-2015: 18 characters from 31 (digits and capitals without I, O, Z, S and V); the last
# is a check character over the first 17, with weights 3^i mod 31.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
USCC_LENGTH = 18


def normalise_reference(value: str) -> str:
    """A typed reference (a bank serial number, an invoice number) in the one form it is stored
    and compared in: full-width characters folded to half-width (NFKC), surrounding blanks
    trimmed, upper case. ``bank-77``, ``BANK-77 `` and ``ＢＡＮＫ－７７`` are one reference."""
    return unicodedata.normalize("NFKC", value or "").strip().upper()


def normalise_uscc(value: str) -> str:
    """Upper case, without spaces: how people paste it from a business licence."""
    return "".join((value or "").split()).upper()


def uscc_check_character(first_17: str) -> str:
    total = sum(USCC_CHARSET.index(ch) * w for ch, w in zip(first_17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> None:
    """Refuse anything that is not a well-formed unified social credit code with the right
    check character (GB 32100-2015)."""
    code = normalise_uscc(value)
    if len(code) != USCC_LENGTH or any(ch not in USCC_CHARSET for ch in code):
        raise ValidationError(
            _(
                "A unified social credit code has 18 characters: digits and capital letters "
                "other than I, O, Z, S and V."
            ),
            code="uscc_format",
        )
    if not code[2:8].isdigit():
        raise ValidationError(
            _("Characters 3 to 8 of a unified social credit code are the region's digits."),
            code="uscc_region",
        )
    if uscc_check_character(code[:17]) != code[17]:
        raise ValidationError(
            _("The unified social credit code's check character is wrong; please check it."),
            code="uscc_check",
        )
