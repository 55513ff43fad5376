"""The UI's copy of the OpenAPI document (frontend/openapi.json) is the one the API serves.

The UI generates its types (frontend/src/api/schema.ts, `npm run gen:types`) and reads its limits and
defaults from that file, so a change to chalicelib/openapi.py or to an option's spec that is not
exported there would leave the UI describing an older API. frontend/src/api/schema.test.ts checks
the second half: that schema.ts is what openapi-typescript makes of the committed file.
"""

from __future__ import annotations

from pathlib import Path

from chalicelib.openapi import document, dump

COMMITTED = Path(__file__).resolve().parents[2] / "frontend" / "openapi.json"
REGENERATE = "python -m chalicelib.openapi > frontend/openapi.json && (cd frontend && npm run gen:types)"


def test_frontend_openapi_json_matches_the_document_the_api_serves():
    assert COMMITTED.exists(), f"frontend/openapi.json is missing; make it with: {REGENERATE}"
    assert COMMITTED.read_text(encoding="utf-8") == dump(document()), (
        f"frontend/openapi.json is out of date with chalicelib/openapi.py; regenerate it with: {REGENERATE}"
    )
