"""The ERP API for the shop's wallet and invoice requests (``/api/v1/``)."""
