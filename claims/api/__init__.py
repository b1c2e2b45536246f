"""The ERP API for the shop's claims (``/api/v1/claims/``)."""
