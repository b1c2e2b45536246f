"""What the OpenAPI schema says about errors: every operation's refusals in the one error shape
(``shops.api.errors``), so a client (and the fuzzer) can hold every answer to the schema."""

ERROR = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "Stable, for machines."},
        "message": {"type": "string", "description": "Chinese, or English when asked."},
        "details": {
            "type": "object",
            "additionalProperties": True,
            "description": "Per-field messages, refused rules, or seconds to wait.",
        },
    },
    "required": ["code", "message", "details"],
}
# What any operation may answer, and what only writes add.
EVERY = {
    "400": "The request is not valid (bad fields or filters).",
    "401": "No key, or the key is unknown, revoked or expired.",
    "403": "The key may not be used from this address.",
    "404": "No such record of the key's shop (or the shop has no wallet).",
    "429": "Too many requests with this key; see Retry-After.",
}
WRITES = {
    "409": "A request with this Idempotency-Key is still running.",
    "422": "Refused: ineligible, the key reused with another body, or a business rule.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the Error component and each operation's refusals."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            codes = {**EVERY, **(WRITES if method == "post" else {})}
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                responses.setdefault(code, {"description": description, "content": content})
    return result
