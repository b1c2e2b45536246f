"""Writes with rules on shops and their e-waybill accounts."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from couriers.models import Courier
from shops.access import access_for
from shops.models import PLATFORM_CS, EwaybillAccount, Shop


def shop_save_settings(*, actor, shop: Shop) -> Shop:
    shop.full_clean()
    shop.save()
    return shop


def ewaybill_account_grant(*, actor, shop: Shop, courier: Courier, account_no: str):
    """The platform records a shop's e-waybill account with a courier (what the courier issues
    its waybills under and checks an intercept against)."""
    access = access_for(actor)
    if not (access.is_superuser or PLATFORM_CS in access.platform_groups):
        raise PermissionDenied(_("Only platform customer service grants e-waybill accounts."))
    account_no = "".join((account_no or "").split())
    if not account_no:
        raise ValidationError({"account_no": _("Enter the e-waybill account number.")})
    if EwaybillAccount.objects.filter(shop=shop, courier=courier).exists():
        raise ValidationError(
            {"courier": _("The shop already has an e-waybill account with this courier.")}
        )
    if EwaybillAccount.objects.filter(courier=courier, account_no=account_no).exists():
        raise ValidationError(
            {"account_no": _("This account number belongs to another shop with this courier.")}
        )
    try:
        with transaction.atomic():
            return EwaybillAccount.objects.create(
                shop=shop, courier=courier, account_no=account_no, granted_by=actor
            )
    except IntegrityError as exc:
        raise ValidationError(_("This e-waybill account was granted meanwhile.")) from exc


def ewaybill_account_revoke(*, actor, account: EwaybillAccount) -> None:
    access = access_for(actor)
    if not (access.is_superuser or PLATFORM_CS in access.platform_groups):
        raise PermissionDenied(_("Only platform customer service revokes e-waybill accounts."))
    account.delete()
