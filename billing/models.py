"""Billing records (wallets, ledger, fee rules and invoices arrive with the billing work)."""
