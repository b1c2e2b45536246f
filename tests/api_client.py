"""Calling the ERP API as an ERP does: a key in the Authorization header, JSON bodies."""

import json
from dataclasses import dataclass

from shops.api_keys import api_key_create


@dataclass
class Keys:
    a: str  # shop A's key (made by its owner)
    b: str  # shop B's key
    key_a: object
    key_b: object


def make_keys(world) -> Keys:
    key_a, raw_a = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP-A")
    key_b, raw_b = api_key_create(actor=world.other, shop=world.shop_b, name="ERP-B")
    return Keys(a=raw_a, b=raw_b, key_a=key_a, key_b=key_b)


def call(client, method: str, path: str, key: str | None, body=None, **headers):
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["data"] = json.dumps(body)
        kwargs["content_type"] = "application/json"
    return getattr(client, method.lower())(path, **kwargs)
