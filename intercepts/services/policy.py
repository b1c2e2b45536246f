"""The platform's intercept policy and the shop's signed service agreement."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from intercepts.models import (
    InterceptPolicy,
)
from intercepts.services.errors import DomainError
from shops.access import access_for
from shops.models import Shop


def intercept_policy_save(*, actor, policy: InterceptPolicy) -> InterceptPolicy:
    """Save the platform's intercept policy (platform staff only), keeping one row."""
    from shops.access import access_for

    if not access_for(actor).is_platform:
        raise DomainError(_("Only platform staff may change the intercept policy."))
    policy.pk = 1
    policy.updated_at = timezone.now()
    policy.full_clean()
    policy.save()
    return policy


def shop_sign_agreement(*, actor, shop: Shop, version: str) -> Shop:
    """The shop's owner or an agent (whoever first intercepts for the shop) signs the current
    intercept service agreement for the shop; who and when are kept."""
    if not access_for(actor).acts_for(shop.pk):
        raise DomainError(
            _("Only the shop's owner or an after-sales agent may sign the intercept agreement.")
        )
    current = InterceptPolicy.current().agreement_version
    if version != current:
        raise DomainError(_("This is not the current version of the agreement; reload the page."))
    with transaction.atomic():
        Shop.objects.filter(pk=shop.pk).update(
            intercept_agreement_version=version,
            intercept_agreement_signed_at=timezone.now(),
            intercept_agreement_signed_by=actor,
        )
    shop.refresh_from_db()
    return shop
