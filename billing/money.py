"""Money is an integer number of fen; people read and type yuan with two decimals."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

FEN_PER_YUAN = 100
# Far above any amount this product moves, and well inside a 64-bit number of fen.
MAX_YUAN = Decimal("1000000000000")


def format_fen(amount_fen: int | None) -> str:
    """12345 -> '123.45' (negative amounts keep their sign)."""
    if amount_fen is None:
        return ""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(int(amount_fen)), FEN_PER_YUAN)
    return f"{sign}{yuan:,}.{fen:02d}"


def yuan_to_fen(value: Decimal | str | int) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValidationError(_("Enter an amount in yuan, for example 12.50.")) from exc
    if not amount.is_finite() or abs(amount) >= MAX_YUAN:
        raise ValidationError(_("Enter an amount in yuan, for example 12.50."))
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(_("Amounts have at most two decimal places (fen)."))
    return int((amount * FEN_PER_YUAN).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class YuanFormField(forms.DecimalField):
    """A form field typed in yuan that cleans to integer fen."""

    def __init__(self, *, min_fen: int | None = 0, max_fen: int | None = None, **kwargs):
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("max_digits", 14)
        kwargs.pop("min_value", None)
        kwargs.pop("max_value", None)
        self.min_fen = min_fen
        self.max_fen = max_fen
        super().__init__(**kwargs)
        self.error_messages["max_decimal_places"] = _(
            "Amounts have at most two decimal places (fen)."
        )
        self.error_messages["invalid"] = _("Enter an amount in yuan, for example 12.50.")

    def prepare_value(self, value):
        if isinstance(value, int):
            return format_fen(value).replace(",", "")
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        # Parse ourselves: DecimalField's own checks for finite numbers and digit counts run in
        # validators that this field replaces with bounds in fen.
        return yuan_to_fen(str(value).strip())

    def validate(self, value):
        forms.Field.validate(self, value)

    def run_validators(self, value):
        if value is None:
            return
        if self.min_fen is not None and value < self.min_fen:
            if self.min_fen == 0:
                raise ValidationError(_("The amount cannot be negative."), code="min_value")
            raise ValidationError(
                _("The amount must be at least %(yuan)s yuan."),
                code="min_value",
                params={"yuan": format_fen(self.min_fen)},
            )
        if self.max_fen is not None and value > self.max_fen:
            raise ValidationError(
                _("The amount cannot exceed %(yuan)s yuan."),
                code="max_value",
                params={"yuan": format_fen(self.max_fen)},
            )


class MoneyField(models.BigIntegerField):
    """Integer fen in the database, yuan in forms; never negative unless allowed."""

    def __init__(self, *args, allow_negative: bool = False, **kwargs):
        self.allow_negative = allow_negative
        super().__init__(*args, **kwargs)

    def validate(self, value, model_instance):
        super().validate(value, model_instance)
        if value is not None and not self.allow_negative and value < 0:
            raise ValidationError(_("The amount cannot be negative."), code="min_value")

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
