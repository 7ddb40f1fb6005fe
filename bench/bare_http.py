"""The HTTP stack's own ceiling for bench_http.py: a bare FastAPI endpoint that takes the same
checkpoint body (parsed and validated by the same kind of pydantic model) and answers 201 with a JSON
checkpoint, without Tether behind it. Run by bench_http.py under uvicorn like `tether serve`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Response
from pydantic import BaseModel, ConfigDict

from tether.server.shapes import dumps

app = FastAPI()
_seq: dict[str, int] = {}


class NewCheckpoint(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str
    data: dict[str, Any] | None = None
    epoch: int | None = None


@app.post("/v1/sessions/{session_id}/checkpoints", status_code=201)
async def append(session_id: str, body: NewCheckpoint) -> Response:
    seq = _seq[session_id] = _seq.get(session_id, 0) + 1
    cp = {
        "session_id": session_id,
        "seq": seq,
        "name": body.name,
        "timestamp": datetime.now(UTC),
        "data": body.data,
    }
    return Response(dumps(cp), 201, media_type="application/json")
