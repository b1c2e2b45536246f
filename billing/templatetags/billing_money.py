"""Template filters for money: ``{{ amount_fen|yuan }}`` shows fen as yuan with two decimals."""

from django import template

from billing.money import format_fen

register = template.Library()


@register.filter
def yuan(amount_fen) -> str:
    return format_fen(amount_fen) if amount_fen is not None else "-"
