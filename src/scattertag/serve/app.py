"""The HTTP face of the service: a FastAPI app with the JSON API, pictures, events and the page.

Every bad request is answered with a 4xx status and ``{"detail": "what is wrong"}``:
400 bad parameters, 401/403 missing or wrong API key (or a path outside the served
folders), 404 unknown frame or file, 411/413 missing or too large Content-Length, 415 wrong
content type or file type, 422 a file or array that cannot be tagged; 503 when the Dask
cluster of ``--dask`` fails (a worker died, the scheduler went away). The interactive API
description is at ``/docs`` (drawn from ``/openapi.json`` by a local page; nothing is
fetched from the internet).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import time
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from scattertag import __version__
from scattertag.io.readers import ReadError
from scattertag.parallel import reuse_freed_memory
from scattertag.prediction.pipeline import Predictor
from scattertag.serve.cluster import ClusterError
from scattertag.serve.config import API_KEY_ENV, ServeConfig
from scattertag.serve.service import Forbidden, NotFound, Service
from scattertag.serve.store import Query as FrameQuery
from scattertag.serve.tagger import Timings, add
from scattertag.serve.uploads import (
    UploadError,
    array_bytes,
    check_length,
    parse_form,
    suffix_of,
)

STATIC = Path(__file__).parent / "static"
#: Most frames replayed to an event-stream client that reconnects.
REPLAY = 500

GEOMETRY_DOC = "beam centre x (column) in pixels; with beam_y overrides the server's geometry"


class Geometry(BaseModel):
    """Geometry query parameters of uploads; blank values come from the server's geometry."""

    beam_x: float | None = Field(None, description=GEOMETRY_DOC)
    beam_y: float | None = Field(None, description="beam centre y (row) in pixels")
    pixel_size_um: float | None = Field(None, description="pixel size in micrometres")
    distance_m: float | None = Field(None, description="sample-detector distance in metres")
    energy_kev: float | None = Field(None, description="photon energy in keV")
    frame: int | None = Field(None, ge=0, description="tag only this frame of a multi-frame file")


class Labels(BaseModel):
    """A correction: tag -> 1 (present), 0 (absent) or null (not judged); others blank."""

    labels: dict[str, int | bool | None]
    note: str = Field("", max_length=2000)


def parse_time(name: str, text: str | None) -> float | None:
    """Unix seconds from a number or an ISO 8601 date-time (UTC if no zone); 400 otherwise."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise HTTPException(
                400, f"{name} must be Unix seconds or an ISO 8601 date-time, got {text!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.now().astimezone().tzinfo)
        return moment.timestamp()
    if not math.isfinite(value):
        raise HTTPException(400, f"{name} must be finite, got {text!r}")
    return value


BINARY = {"type": "string", "format": "binary"}


def body_doc(content_type: str, schema: dict) -> dict:
    """The OpenAPI request body of a route that reads (and size-checks) its body itself."""
    return {"requestBody": {"required": True, "content": {content_type: {"schema": schema}}}}


def server_timing(timings: Timings) -> str:
    """A ``Server-Timing`` header value: each step's milliseconds (``step;dur=1.234``)."""
    return ", ".join(f"{step};dur={ms:.3f}" for step, ms in timings.items())


def frames_json(records) -> dict:
    """The JSON answer of a tagging request."""
    return {"frames": [r.to_json() for r in records]}


def tagged(records, timings: Timings, start: float) -> JSONResponse:
    """The answer of an upload: :func:`frames_json` with the ``Server-Timing`` of its steps
    (made here: FastAPI's encoding of a returned dict walks every value again)."""
    add(timings, "total", time.perf_counter() - start)
    return JSONResponse(frames_json(records), headers={"Server-Timing": server_timing(timings)})


def create_app(config: ServeConfig, predictor: Predictor | None = None) -> FastAPI:
    """The FastAPI application of one service (model loaded now, tagger started with the app)."""
    service = Service(config, predictor)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="scattertag",
        version=__version__,
        description=(
            "Tag X-ray scattering detector frames. Uploads and writes need the API key "
            f"(header X-API-Key or 'Authorization: Bearer KEY') when the server has one "
            f"(--api-key or {API_KEY_ENV})."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    vocabulary = service.predictor.vocabulary

    async def require_key(request: Request) -> None:
        """Dependency of uploads and writes: the API key, when the server has one (async: a
        plain function would run in a thread, a hand-off on every upload)."""
        if not config.api_key:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not given:
            raise HTTPException(401, "this server needs an API key (header X-API-Key)")
        if not hmac.compare_digest(given.encode(), config.api_key.encode()):
            raise HTTPException(403, "wrong API key")

    def check_tag(tag: str | None) -> str | None:
        if tag is not None and tag not in vocabulary:
            raise HTTPException(400, f"unknown tag {tag!r}; the model's tags: {vocabulary}")
        return tag

    def status_of(exc: Exception) -> int:
        if isinstance(exc, UploadError):
            return exc.status
        return {NotFound: 404, Forbidden: 403, ReadError: 422, ClusterError: 503}.get(
            type(exc), 400
        )

    async def explain(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    for kind in (UploadError, NotFound, Forbidden, ReadError, ValueError, ClusterError):
        app.add_exception_handler(kind, explain)

    write = [Depends(require_key)]

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "api.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/model", tags=["model"])
    async def model() -> dict:
        """The model's tags and per-tag thresholds, and what the server needs for writes."""
        return {
            "vocabulary": vocabulary,
            "thresholds": dict(zip(vocabulary, service.predictor.thresholds.tolist())),
            "needs_api_key": bool(config.api_key),
            "folders": [str(f) for f in config.folders],
            "tiled": config.tiled,
            "watch": config.watch,
            "max_upload_bytes": config.max_upload_bytes,
            "version": __version__,
        }

    @app.post(
        "/api/tag/file",
        tags=["tag"],
        response_model=dict,
        dependencies=write,
        openapi_extra=body_doc(
            "multipart/form-data",
            {
                "type": "object",
                "required": ["file"],
                "properties": {"file": BINARY, "dataset": {"type": "string"}},
            },
        ),
    )
    async def tag_file(request: Request, geometry: Annotated[Geometry, Query()]) -> JSONResponse:
        """Tag an uploaded detector file (TIFF, CBF, EDF, HDF5, .npy): multipart field ``file``.

        An HDF5 dataset can be named in the form field ``dataset``. The answer has one entry
        per frame: tags, probabilities, the beam centre used and where it came from; its
        ``Server-Timing`` header the milliseconds of each step.
        """
        start, timings = time.perf_counter(), Timings()
        setup, source = service.request_setup(**geometry.model_dump(exclude={"frame"}))
        check_length(request.headers.get("content-length"), config.max_upload_bytes)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise UploadError(415, "send the file as multipart/form-data in the field 'file'")
        form = parse_form(await request.body(), content_type)
        if "file" not in form.files:
            raise UploadError(400, "multipart field 'file' with a file is missing")
        filename, data = form.files["file"]
        suffix = suffix_of(filename)
        add(timings, "parse", time.perf_counter() - start)
        records = await service.tag_upload(
            data,
            suffix,
            filename,  # not empty: suffix_of refused an empty name
            setup,
            source,
            geometry.frame,
            form.fields.get("dataset") or None,
            timings,
        )
        return tagged(records, timings, start)

    @app.post(
        "/api/tag/array",
        tags=["tag"],
        response_model=dict,
        dependencies=write,
        openapi_extra=body_doc("application/octet-stream", BINARY),
    )
    async def tag_array(
        request: Request,
        geometry: Annotated[Geometry, Query()],
        shape: Annotated[str | None, Query(description="'rows,cols' of a bare body")] = None,
        dtype: Annotated[str | None, Query(description="e.g. uint32, of a bare body")] = None,
        name: Annotated[str, Query(max_length=200)] = "array",
    ) -> JSONResponse:
        """Tag a raw array: a ``.npy`` body, or bare bytes with ``shape`` and ``dtype``
        (``Server-Timing``: as for files)."""
        start, timings = time.perf_counter(), Timings()
        setup, source = service.request_setup(**geometry.model_dump(exclude={"frame"}))
        check_length(request.headers.get("content-length"), config.max_upload_bytes)
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind not in ("application/octet-stream", "application/x-npy", "application/npy"):
            raise UploadError(415, f"send the array as application/octet-stream, not {kind!r}")
        npy = array_bytes(await request.body(), shape, dtype)
        add(timings, "parse", time.perf_counter() - start)
        records = await service.tag_upload(
            npy, ".npy", name, setup, source, geometry.frame, timings=timings
        )
        return tagged(records, timings, start)

    @app.post("/api/tag/path", tags=["tag"], dependencies=write)
    async def tag_path(
        path: Annotated[str, Query(max_length=4096, description="relative to a served folder")],
    ) -> dict:
        """Tag a file of a served folder now (or return its stored result)."""
        return frames_json(await service.tag_path(path))

    @app.get("/api/frames", tags=["frames"])
    async def frames(
        tag: Annotated[str | None, Query(description="tagged with this tag")] = None,
        min_p: Annotated[float | None, Query(ge=0, le=1, description="tag probability >=")] = None,
        max_p: Annotated[float | None, Query(ge=0, le=1, description="tag probability <=")] = None,
        since: Annotated[str | None, Query(description="Unix seconds or ISO 8601")] = None,
        until: Annotated[str | None, Query(description="Unix seconds or ISO 8601")] = None,
        folder: Annotated[
            str | None, Query(description="served folder, 'uploads' or Tiled URI")
        ] = None,
        errors: Annotated[
            bool | None, Query(description="only failed (true) / tagged (false)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict:
        """Frames seen so far, newest first, filtered and paged."""
        if (min_p is not None or max_p is not None) and tag is None:
            raise HTTPException(400, "min_p and max_p filter one tag's probability: give tag")
        q = FrameQuery(
            check_tag(tag),
            min_p,
            max_p,
            parse_time("since", since),
            parse_time("until", until),
            folder,
            errors,
        )
        total, records = service.store.query(q, limit, offset)
        return {
            "total": total,
            "offset": offset,
            "limit": limit,
            "frames": [r.to_json() for r in records],
        }

    @app.get("/api/frames/{frame_id}", tags=["frames"])
    async def frame(frame_id: int) -> dict:
        """One frame's tags, probabilities, geometry and latest correction."""
        return service.record(frame_id).to_json()

    async def picture(frame_id: int, kind: str, size: int = 160) -> Response:
        record = service.record(frame_id)
        try:
            png = await asyncio.to_thread(service.pictures.get, record, kind, size)
        except ReadError as exc:
            raise NotFound(f"frame {frame_id} can no longer be read: {exc}") from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/frames/{frame_id}/thumb.png", tags=["pictures"], response_class=Response)
    async def thumb(frame_id: int, size: Annotated[int, Query(ge=16, le=512)] = 160):
        """A small false-colour picture of the frame (log scale, masked pixels grey)."""
        return await picture(frame_id, "thumb", size)

    @app.get("/api/frames/{frame_id}/image.png", tags=["pictures"], response_class=Response)
    async def image(frame_id: int):
        """The false-colour frame with its mask (grey) and beam centre (cyan)."""
        return await picture(frame_id, "image")

    @app.get("/api/frames/{frame_id}/cake.png", tags=["pictures"], response_class=Response)
    async def cake(frame_id: int):
        """The frame's cake: azimuth x log radius about the beam centre (the model's image view)."""
        return await picture(frame_id, "cake")

    @app.put("/api/frames/{frame_id}/labels", tags=["frames"], dependencies=write)
    async def correct(frame_id: int, body: Labels) -> dict:
        """Correct a frame's tags: appended to the labels table (TSV) that fine-tuning reads."""
        row = service.correct(frame_id, body.labels, body.note)
        return {"labels_table": str(service.labels.path), "row": row}

    @app.get("/api/counts", tags=["frames"])
    async def counts(
        bucket: Annotated[
            float | None, Query(gt=0, description="seconds per time bin (default: about 40 bins)")
        ] = None,
        since: str | None = None,
        until: str | None = None,
        folder: str | None = None,
    ) -> dict:
        """Frames and frames per tag in time bins of ``bucket`` seconds (for the page's plot)."""
        q = FrameQuery(
            since=parse_time("since", since), until=parse_time("until", until), folder=folder
        )
        return service.store.counts(bucket, q)

    @app.get("/api/folders", tags=["frames"])
    async def folders() -> list[str]:
        """Every folder, Tiled URI or 'uploads' with frames."""
        return service.store.folders()

    @app.get("/api/events", tags=["frames"], response_class=StreamingResponse)
    async def events(
        request: Request, after: Annotated[int | None, Query(ge=0)] = None
    ) -> StreamingResponse:
        """Server-sent events: one ``frame`` event (the frame's JSON) per newly tagged frame.

        ``after`` (or the Last-Event-ID header of a reconnecting EventSource) first replays
        the frames stored since that id.
        """
        last = request.headers.get("last-event-id")
        last_id = int(last) if last and last.isdigit() else after

        async def stream():
            queue = service.events.subscribe()
            newest = last_id or 0
            try:
                yield "retry: 2000\n\n"
                if last_id is not None:
                    _, records = service.store.query(FrameQuery(after_id=last_id), REPLAY)
                    for r in reversed(records):
                        newest = max(newest, r.id or 0)
                        yield f"id: {r.id}\nevent: frame\ndata: {json.dumps(r.to_json())}\n\n"
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), 15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if item is None:
                        return
                    if item["id"] > newest:
                        yield f"id: {item['id']}\nevent: frame\ndata: {json.dumps(item)}\n\n"
            finally:
                service.events.unsubscribe(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/api/health", tags=["model"])
    async def health() -> dict:
        """Liveness, and the sizes of the last network batches."""
        return {"ok": True, "batches": service.tagger.batches[-20:]}

    return app


def run(config: ServeConfig, predictor: Predictor | None = None) -> None:
    """Serve until interrupted."""
    import uvicorn

    # Each upload passes through several bodies of its size (received, split, saved): with
    # glibc's default those come from fresh pages every time, ~1000 page faults a 4 MB frame.
    reuse_freed_memory()
    uvicorn.run(
        create_app(config, predictor),
        host=config.host,
        port=config.port,
        timeout_graceful_shutdown=2,
        log_level="info",
    )


@contextmanager
def running(config: ServeConfig, predictor: Predictor | None = None, timeout: float = 60.0):
    """Context manager serving in a background thread; yields the base URL (tests, benchmarks)."""
    import threading

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, predictor),
            host=config.host,
            port=config.port,
            timeout_graceful_shutdown=1,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
