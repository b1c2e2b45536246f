from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InterceptsConfig(AppConfig):
    name = "intercepts"
    verbose_name = _("After-sales")

    def ready(self) -> None:
        # Billing names intercept fees ``intercept:<id>`` and cannot read our tables; it asks
        # us for the order and waybill behind them (wallet movements, fee statements, exports).
        from billing import references
        from intercepts.selectors import (
            intercept_fee_columns,
            intercept_fee_find,
            intercept_fee_subjects,
        )

        references.register(
            "intercept", intercept_fee_subjects, intercept_fee_columns, intercept_fee_find
        )
