"""The claims workbench in the admin; importing the modules here registers their pages: the
claims list and claim pages (``claim_records``) and finance's payouts report (``payouts``)."""

from claims.admin import claim_records, payouts  # noqa: F401
