"""Protocol adapters: one interface for every courier gateway, plain dataclasses in and out."""
