"""The ERP API for after-sales, parcels and intercepts (``/api/v1/``)."""
