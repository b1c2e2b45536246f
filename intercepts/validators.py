"""Checks on what a merchant types about a parcel's receiver."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# A mainland mobile: 11 digits from 13x to 19x, with +86 in front or not.
MOBILE = re.compile(r"(?:\+?86)?1[3-9]\d{9}")
# A landline with its area code (010, 021, 0755 …), a local number of 7 or 8 digits that does
# not start with 0, and an extension after a hyphen.
LANDLINE = re.compile(r"0\d{2,3}-?[1-9]\d{6,7}(?:-\d{1,6})?")


def validate_phone(value: str) -> None:
    """A receiver's phone: a mainland mobile or a landline with its area code. Spaces are
    ignored, and hyphens where they separate digits."""
    typed = "".join((value or "").split())
    if MOBILE.fullmatch(typed.replace("-", "")) or LANDLINE.fullmatch(typed):
        return
    raise ValidationError(
        _("Enter an 11-digit mobile number or a landline with its area code, like 021-12345678."),
        code="invalid_phone",
    )
