"""Money is an integer number of fen; people read and type yuan with two decimals.

Every typed amount goes through one strict parser, ``yuan_to_fen``: ASCII digits, at most one
decimal point with at most two decimals after it, and a leading minus only where negative amounts
are allowed. ``Decimal`` alone would read ``1e5``, full-width ``１００``, ``1_000`` or ``NaN`` as
numbers; on a money form each of those is far more likely a slip than a meaning, so each is
refused with its own reason.
"""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

FEN_PER_YUAN = 100
# Far above any amount this product moves, and well inside a 64-bit number of fen.
MAX_YUAN = 1_000_000_000_000
# Longer input is refused before it is read (and before int() meets a huge digit string).
MAX_TYPED_LENGTH = 32

# The one accepted form: "12", "12.5", "12.50", and "-12.50" where negatives are allowed.
PLAIN_YUAN = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,2}))?", re.ASCII)
_EXPONENT = re.compile(r"[+-]?[0-9]*\.?[0-9]*[eE][+-]?[0-9]+", re.ASCII)
_TOO_MANY_DECIMALS = re.compile(r"[+-]?[0-9]+\.[0-9]{3,}", re.ASCII)
_NAMED_NUMBERS = {"nan", "snan", "qnan", "inf", "infinity"}

ENTER_AMOUNT = _("Enter an amount in yuan, for example 12.50.")
AT_MOST_TWO_DECIMALS = _("Amounts have at most two decimal places (fen).")
NOT_NEGATIVE = _("The amount cannot be negative.")


def format_fen(amount_fen: int | None) -> str:
    """12345 -> '123.45' (negative amounts keep their sign)."""
    if amount_fen is None:
        return ""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(int(amount_fen)), FEN_PER_YUAN)
    return f"{sign}{yuan:,}.{fen:02d}"


def _refusal(text: str, *, allow_negative: bool) -> ValidationError:
    """Why ``text`` is not a plain amount, in the user's words."""
    if not text.isascii():
        return ValidationError(
            _(
                "Enter an amount in yuan in half-width characters (digits 0-9 and a decimal "
                "point), for example 12.50; full-width and other digits are not read."
            ),
            code="not_ascii",
        )
    if text.lower().lstrip("+-") in _NAMED_NUMBERS:
        return ValidationError(ENTER_AMOUNT, code="invalid")
    if _EXPONENT.fullmatch(text):
        return ValidationError(
            _("Enter an amount in yuan written out in full, without an exponent such as 1e5."),
            code="exponent",
        )
    if "," in text or "_" in text:
        return ValidationError(
            _("Write the amount without thousands separators."), code="separator"
        )
    if any(ch.isspace() for ch in text):
        return ValidationError(_("Write the amount without spaces."), code="blank")
    if text.startswith("+"):
        return ValidationError(_("Write the amount without a plus sign."), code="plus")
    if text.startswith("-") and not allow_negative and PLAIN_YUAN.fullmatch(text[1:]):
        return ValidationError(NOT_NEGATIVE, code="min_value")
    if _TOO_MANY_DECIMALS.fullmatch(text.lstrip("-")):
        return ValidationError(AT_MOST_TWO_DECIMALS, code="max_decimal_places")
    return ValidationError(ENTER_AMOUNT, code="invalid")


def yuan_to_fen(value: str | int, *, allow_negative: bool = False) -> int:
    """The fen of an amount typed in yuan, in plain decimal form only (see the module)."""
    text = (value if isinstance(value, str) else str(value)).strip()
    if len(text) > MAX_TYPED_LENGTH:
        raise ValidationError(_("The amount is too large."), code="max_value")
    match = PLAIN_YUAN.fullmatch(text)
    if match is None or (match[1] and not allow_negative):
        raise _refusal(text, allow_negative=allow_negative)
    sign, yuan, fen = match.groups()
    if int(yuan) >= MAX_YUAN:
        raise ValidationError(_("The amount is too large."), code="max_value")
    amount = int(yuan) * FEN_PER_YUAN + int((fen or "").ljust(2, "0"))
    return -amount if sign else amount


class YuanFormField(forms.DecimalField):
    """A form field typed in yuan that cleans to integer fen, through ``yuan_to_fen``; a minus
    sign is accepted only when ``min_fen`` allows negative amounts."""

    def __init__(self, *, min_fen: int | None = 0, max_fen: int | None = None, **kwargs):
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("max_digits", 14)
        kwargs.pop("min_value", None)
        kwargs.pop("max_value", None)
        self.min_fen = min_fen
        self.max_fen = max_fen
        super().__init__(**kwargs)
        self.error_messages["max_decimal_places"] = AT_MOST_TWO_DECIMALS
        self.error_messages["invalid"] = ENTER_AMOUNT

    @property
    def allow_negative(self) -> bool:
        return self.min_fen is None or self.min_fen < 0

    def prepare_value(self, value):
        if isinstance(value, int):
            return format_fen(value).replace(",", "")
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        # Parse ourselves: DecimalField reads exponents and non-ASCII digits, and its checks for
        # finite numbers and digit counts run in validators this field replaces with fen bounds.
        try:
            return yuan_to_fen(str(value), allow_negative=self.allow_negative)
        except ValidationError as exc:
            # A number too long to read is still above the field's limit: say the limit.
            if exc.code == "max_value" and self.max_fen is not None:
                raise self._above_max() from exc
            raise

    def _above_max(self) -> ValidationError:
        return ValidationError(
            _("The amount cannot exceed %(yuan)s yuan."),
            code="max_value",
            params={"yuan": format_fen(self.max_fen)},
        )

    def validate(self, value):
        forms.Field.validate(self, value)

    def run_validators(self, value):
        if value is None:
            return
        if self.min_fen is not None and value < self.min_fen:
            if self.min_fen == 0:
                raise ValidationError(NOT_NEGATIVE, code="min_value")
            raise ValidationError(
                _("The amount must be at least %(yuan)s yuan."),
                code="min_value",
                params={"yuan": format_fen(self.min_fen)},
            )
        if self.max_fen is not None and value > self.max_fen:
            raise self._above_max()


class MoneyField(models.BigIntegerField):
    """Integer fen in the database, yuan in forms; never negative unless allowed."""

    def __init__(self, *args, allow_negative: bool = False, **kwargs):
        self.allow_negative = allow_negative
        super().__init__(*args, **kwargs)

    def validate(self, value, model_instance):
        super().validate(value, model_instance)
        if value is not None and not self.allow_negative and value < 0:
            raise ValidationError(NOT_NEGATIVE, code="min_value")

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.allow_negative:
            kwargs["allow_negative"] = True
        return name, path, args, kwargs

    def formfield(self, **kwargs):
        defaults = {
            "form_class": YuanFormField,
            "min_fen": None if self.allow_negative else 0,
        }
        defaults.update(kwargs)
        return models.Field.formfield(self, **defaults)
