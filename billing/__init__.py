"""Billing: money in fen, and (later) wallets, the ledger, fee rules and invoices."""
