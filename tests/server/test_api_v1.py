"""The skeleton of ``/api/v1``: its generated OpenAPI document and its one error shape."""

from __future__ import annotations

from typing import Any

from fixtures.asgi import server_client


def test_openapi_document_is_3_1_and_lists_the_routes(tracker: Any) -> None:
    client = server_client(tracker)
    try:
        response = client.get("/api/v1/openapi.json")
        assert response.status_code == 200
        doc = response.json()
        assert doc["openapi"].startswith("3.1")
        assert "/info" in doc["paths"]
    finally:
        client.close()


def test_info_and_unknown_path_answer_in_the_one_error_shape(tracker: Any) -> None:
    client = server_client(tracker)
    try:
        info = client.get("/api/v1/info")
        assert info.status_code == 200 and info.json()["user"] is None
        missing = client.get("/api/v1/no-such-thing")
        assert missing.status_code == 404
        assert missing.json() == {"error": {"code": "NOT_FOUND", "field": None,
                                            "message": "no endpoint GET /api/v1/no-such-thing"}}
        wrong = client.post("/api/v1/info")
        assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    finally:
        client.close()
