from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClaimsConfig(AppConfig):
    name = "claims"
    verbose_name = _("Claims")

    def ready(self):
        # Finance's payouts page registers its admin in a module of its own, beside the claims'
        # own pages (``claims.admin``), which the admin finds by itself.
        from claims import admin_payouts  # noqa: F401
