"""docs/openapi.json is exactly what the server serves at /openapi.json."""

import json
import os
from pathlib import Path

from api.http.openapi import openapi_document

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_openapi_copy_in_docs_is_current() -> None:
    served = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("SMARTVEND_WRITE_DOCS") == "1":
        DOC.write_text(served)
    assert DOC.read_text() == served, "run with SMARTVEND_WRITE_DOCS=1 to refresh docs/openapi.json"
