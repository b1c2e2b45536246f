"""The after-sales workbench in the admin, one module per area.

The shop-scoped base classes and role tables live in ``shops.scoped_admin``; importing the
modules here registers their pages.
"""

from intercepts.admin import (  # noqa: F401
    after_sales,
    courier_pushes,
    intercept_records,
    orders,
    parcels,
    policy,
    shipment_anomalies,
)
