"""A shop made ready to intercept the way a merchant makes it ready: the agreement signed, an
e-waybill account with the courier, a funded wallet and a payment password, all through the
services."""

import itertools
import time

from django.contrib.auth.models import Group

from billing import services as billing_services
from couriers.models import Courier
from intercepts.models import InterceptPolicy
from intercepts.services.policy import shop_sign_agreement
from shops import services as shop_services
from shops.models import PLATFORM_CS, PLATFORM_FINANCE
from tests.factories import UserFactory

PIN = "135790"
_numbers = itertools.count(1)


def make_ready(shop, owner, *, courier_code: str = "ZTO", fund_fen: int = 1_000) -> None:
    shop_sign_agreement(actor=owner, shop=shop, version=InterceptPolicy.current().agreement_version)
    grant_ewaybill(shop, courier_code)
    wallet = billing_services.wallet_open(actor=owner, shop_id=shop.pk)
    if fund_fen:
        finance = UserFactory(username=f"finance-{shop.pk}-{next(_numbers)}")
        finance.groups.add(Group.objects.get(name=PLATFORM_FINANCE))
        billing_services.wallet_top_up(
            actor=finance,
            wallet=wallet,
            amount_fen=fund_fen,
            external_reference=f"BANK-{shop.pk}-{time.monotonic_ns()}",
        )
    billing_services.payment_password_set(actor=owner, shop_id=shop.pk, pin=PIN)


def grant_ewaybill(shop, courier_code: str = "ZTO"):
    """The platform grants the shop an e-waybill account with the courier."""
    cs = UserFactory(username=f"cs-{shop.pk}-{next(_numbers)}")
    cs.groups.add(Group.objects.get(name=PLATFORM_CS))
    return shop_services.ewaybill_account_grant(
        actor=cs,
        shop=shop,
        courier=Courier.objects.get(code=courier_code),
        account_no=f"EWB-{shop.code}-{courier_code}",
    )


def zto_waybill(digit: str) -> str:
    """A ZTO waybill number never used before in this run, whose last digit picks the sandbox's
    start stage (2: in transit, 7: delivered ...)."""
    return f"78{time.monotonic_ns() % 10**8:08d}{next(_numbers) % 1000:03d}{digit}"
