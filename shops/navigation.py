"""The workbench sidebar: what each entry links to and who sees it.

Each check asks the model's admin, so the sidebar shows exactly the pages a user may open.
"""

from django.contrib import admin


def _can_view(app_label: str, model_name: str):
    def check(request) -> bool:
        from django.apps import apps

        model_admin = admin.site.get_model_admin(apps.get_model(app_label, model_name))
        return model_admin.has_view_permission(request)

    return check


def _platform_can_view(app_label: str, model_name: str):
    """For pages only platform staff are granted (by their groups' model permissions): a
    merchant's sidebar does not load the user's permissions to learn that."""
    can_view = _can_view(app_label, model_name)

    def check(request) -> bool:
        from shops.access import access_for

        return access_for(request.user).is_platform and can_view(request)

    return check


after_sales = _can_view("intercepts", "AfterSale")
intercept_records = _can_view("intercepts", "InterceptRequest")
claims = _can_view("claims", "Claim")
orders = _can_view("intercepts", "Order")
parcels = _can_view("intercepts", "Parcel")
shipment_anomalies = _can_view("intercepts", "ShipmentAnomaly")
# Finance's page of held settlements lives in the anomalies' admin: whoever sees those sees it.
held_settlements = shipment_anomalies
shops = _can_view("shops", "Shop")
ewaybill_accounts = _can_view("shops", "EwaybillAccount")
api_keys = _can_view("shops", "ApiKey")
webhook_endpoints = _can_view("shops", "WebhookEndpoint")
webhook_deliveries = _can_view("shops", "WebhookDelivery")
couriers = _platform_can_view("couriers", "Courier")
intercept_policy = _can_view("intercepts", "InterceptPolicy")
courier_accounts = _platform_can_view("couriers", "CourierAccount")
courier_pushes = _can_view("intercepts", "CourierPush")
users = _can_view("auth", "User")
groups = _can_view("auth", "Group")
wallets = _can_view("billing", "Wallet")
ledger_entries = _can_view("billing", "LedgerEntry")
holds = _can_view("billing", "Hold")
adjustments = _can_view("billing", "Adjustment")
top_ups = _can_view("billing", "TopUp")
fee_rules = _can_view("billing", "FeeRule")
invoices = _can_view("billing", "InvoiceRequest")
finance_exports = _can_view("billing", "Export")
claim_payouts = _can_view("claims", "ClaimPayout")
signin_attempts = _can_view("axes", "AccessAttempt")
signin_failures = _can_view("axes", "AccessFailureLog")
signin_log = _can_view("axes", "AccessLog")
