"""JSON answers: the views' plain data as compact JSON, numbers JSON cannot hold (inf) written as null."""

from __future__ import annotations

import json

from fastapi.responses import Response

from lmxray.views.base import finite


def json_response(data, status_code: int = 200) -> Response:
    """``data`` (plain JSON-ready data, e.g. a view's ``to_dict()``) as an application/json response."""
    try:
        body = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:  # an inf somewhere: rare, so only then is the whole tree walked
        body = json.dumps(finite(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), status_code=status_code, media_type="application/json")
