"""``/api/v1/`` routes of the wallet and invoice requests."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from billing.api import views

router = SimpleRouter()
router.register("invoice-requests", views.InvoiceRequestViewSet, basename="api-invoice-request")

urlpatterns = [
    path("wallet/", views.WalletView.as_view(), name="api-wallet"),
    path("wallet/entries/", views.WalletEntryList.as_view(), name="api-wallet-entries"),
    *router.urls,
]
