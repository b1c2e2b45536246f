"""Parcel tracking: polling the couriers, receiving their pushes, and applying the scans.

- ``polling``: which parcels are due, asking their couriers in bulk, subscribing to pushes;
- ``pushes`` and ``views``: the courier push endpoint, storing and applying what arrives;
- ``scans``: applying scans to parcels (stage, times, next poll) and settling intercepts.
"""
