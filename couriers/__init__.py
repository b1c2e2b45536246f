"""Couriers: the registry, the unified parcel-stage model and (later) the protocol adapters."""
