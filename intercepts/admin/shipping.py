"""Shipping an order from the workbench: the form and the one call to ``ship_order``.

The order page's "ship" page and the parcel add page share it. The receiver is never typed:
it is the one the platform sent with the order, shown read-only.
"""

from django import forms
from django.contrib import messages
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from couriers.models import Courier
from intercepts.models import Order, Shipment
from intercepts.services.shipping import Shipped, ShippingRefused, refusal_text, ship_order


class ShipForm(forms.Form):
    courier = forms.ModelChoiceField(
        label=_("courier"), queryset=Courier.objects.none(), widget=UnfoldAdminSelectWidget
    )
    waybill_no = forms.CharField(
        label=_("waybill number"), max_length=32, widget=UnfoldAdminTextInputWidget
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["courier"].queryset = Courier.objects.filter(is_active=True).order_by(
            "sort_order", "pk"
        )


def ship_from_form(model_admin, request, form: ShipForm, order: Order) -> Shipped | None:
    """Ship ``order`` with the form's courier and waybill; a refusal goes onto the form in the
    platform's words (None), a success is said to the user, with a warning when the waybill
    already went to another address (the order is flagged as a suspected fake shipment)."""
    try:
        shipped = ship_order(
            actor=request.user,
            order=order,
            courier=form.cleaned_data["courier"],
            waybill_no=form.cleaned_data["waybill_no"],
            channel=Shipment.Channel.WORKBENCH,
        )
    except ShippingRefused as exc:
        form.add_error(None, refusal_text(exc.code, exc.message))
        return None
    if not shipped.created:
        model_admin.message_user(
            request,
            _("The order was already shipped with this waybill: nothing changed."),
            level=messages.INFO,
        )
    elif shipped.flagged:
        model_admin.message_user(
            request,
            _(
                "Shipped, but this waybill is already used for another receiver address: the "
                "order is flagged as a suspected fake shipment and the platform may ask you "
                "to explain it."
            ),
            level=messages.WARNING,
        )
    else:
        model_admin.message_user(request, _("Shipped. Tracking starts at the next check."))
    return shipped
