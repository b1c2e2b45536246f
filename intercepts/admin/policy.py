"""The platform's intercept policy and the shop's service agreement."""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from billing.money import YuanFormField
from couriers.stages import ParcelStage
from intercepts import eligibility
from intercepts.admin import intercept_views
from intercepts.models import (
    GoodsCategory,
    InterceptPolicy,
)
from intercepts.services.errors import DomainError
from intercepts.services.policy import intercept_policy_save, shop_sign_agreement
from shops.access import access_for
from shops.models import Shop
from shops.scoped_admin import (
    StrictLookupsMixin,
    is_platform_staff,
)


class InterceptPolicyForm(forms.ModelForm):
    rules = forms.MultipleChoiceField(
        label=_("rules that apply"),
        choices=[(code, title) for code, (title, _check) in eligibility.RULES.items()],
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    excluded_categories = forms.MultipleChoiceField(
        label=_("goods categories that cannot be intercepted"),
        choices=GoodsCategory.choices,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    return_stages = forms.MultipleChoiceField(
        label=_("stages that allow a return to sender"),
        choices=ParcelStage.choices,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    redirect_stages = forms.MultipleChoiceField(
        label=_("stages that allow a change of address"),
        choices=ParcelStage.choices,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    # The cap is a parcel's value, not a wallet's: a million yuan is already far above any claim.
    value_cap_fen = YuanFormField(
        label=_("highest parcel value (yuan)"), min_fen=0, max_fen=100_000_000
    )

    class Meta:
        model = InterceptPolicy
        fields = (
            "rules",
            "excluded_categories",
            "value_cap_fen",
            "return_stages",
            "redirect_stages",
            "allow_one_parcel_of_many",
            "agreement_version",
            "claim_suggest_after_days",
            "shipment_notice_days",
            "shipment_hold_days",
            "receipt_confirm_days",
            "receipt_extend_days",
        )

    def clean(self):
        cleaned = super().clean()
        notice, hold = cleaned.get("shipment_notice_days"), cleaned.get("shipment_hold_days")
        if notice and hold and hold <= notice:
            self.add_error(
                "shipment_hold_days",
                _("The settlement is held later than the first notice: give more days."),
            )
        return cleaned


class AgreementForm(forms.Form):
    agree = forms.BooleanField(
        label=_("I have read the agreement and sign it for the shop"),
        error_messages={"required": _("Tick the box to sign the agreement.")},
    )


@admin.register(InterceptPolicy)
class InterceptPolicyAdmin(StrictLookupsMixin, ModelAdmin):
    """One policy for the platform: platform staff read and edit it, merchants never see it."""

    form = InterceptPolicyForm

    def _platform(self, request) -> bool:
        return is_platform_staff(request)

    def has_module_permission(self, request):
        return self._platform(request)

    def has_view_permission(self, request, obj=None):
        return self._platform(request)

    def has_change_permission(self, request, obj=None):
        return self._platform(request)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # There is one policy: its list is its page.
        if not self.has_view_permission(request):
            raise PermissionDenied
        policy = InterceptPolicy.current()
        return redirect("admin:intercepts_interceptpolicy_change", policy.pk)

    def save_model(self, request, obj, form, change):
        intercept_policy_save(actor=request.user, policy=obj)

    def get_urls(self):
        return [
            path(
                "shop/<path:object_id>/agreement/",
                self.admin_site.admin_view(self.agreement_view),
                name="intercepts_shop_agreement",
            ),
            *super().get_urls(),
        ]

    def agreement_view(self, request, object_id):
        """A shop's page for the intercept service agreement (the policy names its version):
        everyone who may see the shop reads it; its owner
        signs it (before the shop's first intercept, and again for each new version)."""
        # The shop as its own admin scopes it: another shop's is a 404.
        shop = self.admin_site.get_model_admin(Shop).get_object(request, unquote(object_id))
        if shop is None:
            raise Http404
        can_sign = access_for(request.user).acts_for(shop.pk)
        back_url = reverse("admin:shops_shop_change", args=[shop.pk])
        next_url = intercept_views.safe_next(request, "")
        form = AgreementForm(request.POST or None)
        if request.method == "POST":
            if not can_sign:
                raise PermissionDenied
            if form.is_valid():
                try:
                    shop_sign_agreement(
                        actor=request.user, shop=shop, version=request.POST.get("version", "")
                    )
                except DomainError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(request, _("The intercept service agreement is signed."))
                    return redirect(next_url or back_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": Shop._meta,
            "original": shop,
            "shop": shop,
            "title": _("Intercept service agreement"),
            "version": InterceptPolicy.current().agreement_version,
            "can_sign": can_sign,
            "form": form,
            "back_url": back_url,
            "next_url": next_url,
        }
        return TemplateResponse(request, "admin/shops/shop/agreement.html", context)
