"""Billing in the workbench: wallets, the ledger, holds, top-ups, adjustments, fee rules and
invoices (``wallets``), and the finance exports (``exports``)."""

from billing.admin import exports, wallets  # noqa: F401  (each registers its models)
