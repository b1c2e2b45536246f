"""Intercepts: shops and their members, orders, parcels, after-sales and the workbench."""
