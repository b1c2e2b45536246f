"""The claims workbench in the admin; importing the modules here registers their pages."""

from claims.admin import claim_records  # noqa: F401
