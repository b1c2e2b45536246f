"""Claim records (filed against intercepted parcels; built with the claims work)."""
