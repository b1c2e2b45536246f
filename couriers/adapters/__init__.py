"""Protocol adapters: one interface for every courier gateway, plain dataclasses in and out.

``get_adapter(account)`` picks the adapter for the account's protocol. Each adapter holds one
HTTP client; close it (or use it as a context manager) when done.
"""

from couriers.adapters.base import AccountConfig, Adapter


def _registry() -> dict[str, type[Adapter]]:
    # Imported here so that importing ``couriers.adapters.base`` alone does not pull in httpx.
    from couriers.adapters.kdniao import KdniaoAdapter
    from couriers.adapters.kuaidi100 import Kuaidi100Adapter
    from couriers.adapters.sf import SfAdapter

    return {
        Kuaidi100Adapter.protocol: Kuaidi100Adapter,
        SfAdapter.protocol: SfAdapter,
        KdniaoAdapter.protocol: KdniaoAdapter,
    }


PROTOCOLS = ("kuaidi100", "sf", "kdniao")


def adapter_class(protocol: str) -> type[Adapter]:
    """The adapter class for a protocol (its capabilities, without an account); ValueError for a
    protocol we do not speak."""
    found = _registry().get(protocol)
    if found is None:
        raise ValueError(f"No courier adapter for protocol {protocol!r}")
    return found


def get_adapter(account: AccountConfig) -> Adapter:
    """The adapter for ``account.protocol``; ValueError for a protocol we do not speak."""
    return adapter_class(account.protocol)(account)
