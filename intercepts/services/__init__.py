"""Writes with rules on parcels, after-sales and intercepts, one module per subject.

Views, admin actions and tasks call these; they hold no business rules themselves.
"""
