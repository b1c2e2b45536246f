"""The OpenAPI schema covers every endpoint with examples, and its docs page loads its assets
from us, not from the internet."""

import re

import pytest

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/v1/after-sales/", "get"),
    ("/api/v1/after-sales/{id}/", "get"),
    ("/api/v1/parcels/", "get"),
    ("/api/v1/parcels/{id}/", "get"),
    ("/api/v1/parcels/{id}/eligibility/", "get"),
    ("/api/v1/intercepts/", "get"),
    ("/api/v1/intercepts/", "post"),
    ("/api/v1/intercepts/{id}/", "get"),
    ("/api/v1/intercepts/{id}/withdraw/", "post"),
    ("/api/v1/wallet/", "get"),
    ("/api/v1/wallet/entries/", "get"),
    ("/api/v1/invoice-requests/", "get"),
    ("/api/v1/invoice-requests/", "post"),
    ("/api/v1/invoice-requests/{id}/", "get"),
    ("/api/v1/claims/", "get"),
    ("/api/v1/claims/", "post"),
    ("/api/v1/claims/ceiling/", "get"),
    ("/api/v1/claims/{id}/", "get"),
    ("/api/v1/claims/{id}/evidence/{evidence_id}/", "get"),
    ("/api/v1/claims/{id}/withdraw/", "post"),
    ("/api/v1/shipments/", "get"),
    ("/api/v1/shipments/", "post"),
    ("/api/v1/shipment-anomalies/", "get"),
    ("/api/v1/shipment-anomalies/{id}/", "get"),
}
# Answered with a file, not JSON: nothing to show as an example.
FILES = {("/api/v1/claims/{id}/evidence/{evidence_id}/", "get")}


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", {"format": "json"}, headers={"Accept-Language": "en"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_has_every_endpoint_and_nothing_else(schema):
    found = {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }

    assert found == OPERATIONS


def test_every_endpoint_shows_an_example_answer(schema):
    missing = []
    for path, method in OPERATIONS - FILES:
        operation = schema["paths"][path][method]
        answers = [
            content
            for code, response in operation["responses"].items()
            if code.startswith("2")
            for content in response.get("content", {}).values()
        ]
        if not any(content.get("examples") for content in answers):
            missing.append((path, method))

    assert missing == []


def test_every_endpoint_needs_the_key_and_creates_need_an_idempotency_key(schema):
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, method in OPERATIONS:
        operation = schema["paths"][path][method]
        assert operation["security"] == [{"ApiKey": []}], (path, method)
    for path in (
        "/api/v1/intercepts/",
        "/api/v1/invoice-requests/",
        "/api/v1/claims/",
        "/api/v1/shipments/",
    ):
        [header] = [p for p in schema["paths"][path]["post"]["parameters"] if p["in"] == "header"]
        assert (header["name"], header["required"]) == ("Idempotency-Key", True)


def test_an_evidence_file_is_documented_as_the_file_it_is(schema):
    [(path, method)] = FILES
    answer = schema["paths"][path][method]["responses"]["200"]["content"]

    assert set(answer) == {"image/jpeg", "image/png", "image/webp", "application/pdf"}
    assert {content["schema"]["format"] for content in answer.values()} == {"binary"}


def test_a_claim_is_filed_as_multipart_with_its_files(schema):
    body = schema["paths"]["/api/v1/claims/"]["post"]["requestBody"]["content"]
    [name] = body
    fields = schema["components"]["schemas"]["ClaimCreateRequest"]["properties"]

    assert name == "multipart/form-data"
    assert fields["evidence"] == {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": fields["evidence"]["description"],
    }


def test_the_docs_page_loads_only_our_own_assets(client):
    response = client.get("/api/docs/")

    page = response.content.decode()
    assert response.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, page
    assert all(source.startswith("/") for source in sources), sources
    assert any("swagger-ui" in source for source in sources)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/intercepts/not-a-number/"),
        ("POST", "/api/v1/intercepts/1.5/withdraw/"),
        ("GET", "/api/v2/anything/"),
    ],
)
def test_any_other_api_path_answers_in_the_error_shape(client, method, path):
    response = getattr(client, method.lower())(path)

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "未找到。", "details": {}}


def test_every_operation_documents_its_refusals(schema):
    error = {"$ref": "#/components/schemas/Error"}
    for path, method in OPERATIONS:
        responses = schema["paths"][path][method]["responses"]
        expected = {"400", "401", "403", "404", "429"} | (
            {"409", "422"} if method == "post" else set()
        )
        assert expected <= set(responses), (path, method)
        for code in expected:
            assert responses[code]["content"]["application/json"]["schema"] == error
