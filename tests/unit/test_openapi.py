"""The OpenAPI document is valid 3.1 and lists exactly the routes app.py serves."""

from __future__ import annotations

from openapi_spec_validator import validate

from chalicelib.openapi import document


def _app_operations():
    from app import app

    ops = set()
    for path, methods in app.routes.items():
        if path.startswith("/{p1}"):
            continue  # the catch-all that answers unknown routes with 404
        ops |= {(path, method.lower()) for method in methods}
    return ops


def test_openapi_document_is_valid_3_1():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_openapi_document_lists_exactly_the_routes_of_the_app():
    doc = document()
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert documented == _app_operations()


def test_every_operation_documents_its_errors_in_the_error_shape():
    for path, item in document()["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")) and path != "/health":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema in (
                        {"$ref": "#/components/schemas/Error"},
                        {"$ref": "#/components/schemas/TaskFinished"},
                    ), (path, method, status)


def test_the_live_results_socket_is_documented_as_an_extension():
    ws = document()["x-websocket"]
    assert any("?check_id=" in url for url in ws["urls"]) and any("/api/ws/checks/" in url for url in ws["urls"])
    assert set(ws["server_messages"]) == {"snapshot", "result", "task", "status", "error"}
    assert {"1000", "4400", "4404"} <= set(ws["close_codes"])
