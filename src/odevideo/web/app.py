"""``odevideo serve``: a web page to watch a model continue a clip at any frame rate, served on loopback.

The page (``static/``) is plain HTML and JavaScript with nothing loaded from elsewhere; there are no analytics
and no calls out. Requests:

    GET  /                      the page
    GET  /api/models            shipped models and the checkpoints given to ``serve``
    GET  /api/clips             built-in example clips
    POST /api/predict           form: model, clip or file, n_context, fps_factor, horizon, times, samples, seed
    GET  /api/jobs/ID/NAME      a file of a result (videos, the context frame)
    GET  /api/jobs/ID/frame?t=  the frame at one real time t, as a PNG

A bad file or request is answered with ``{"error": message}`` (400, or 413 for an upload over the limit) and
the page shows the message; an unexpected failure is logged here and answered with a short message, never a
stack trace. The server keeps the last ``MAX_JOBS`` results in a temporary folder.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi import Request as HttpRequest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from odevideo import pretrained
from odevideo.data.examples import EXAMPLES, example_clip
from odevideo.data.videos import Clip, read_clip
from odevideo.errors import OdevideoError
from odevideo.inference import Checkpoint, load_checkpoint
from odevideo.visualize import write_frames
from odevideo.web import service
from odevideo.web.service import Limits, Request

STATIC = Path(__file__).resolve().parent / "static"
MAX_JOBS = 32
FORM_OVERHEAD = 64 * 1024  # bytes of a multipart form beside the file itself
UPLOAD_SUFFIXES = (".gif", ".mp4", ".webm", ".npy", ".npz", ".avi", ".mov", ".mkv", ".m4v")
log = logging.getLogger("odevideo.web")


@dataclass
class Job:
    folder: Path
    ckpt: Checkpoint
    context: torch.Tensor
    t_context: torch.Tensor
    files: set[str]


class Server:
    """The models, the results kept for the page, and one lock: one generation at a time."""

    def __init__(self, checkpoints: dict[str, str | Path], limits: Limits, device: str = "cpu") -> None:
        self.sources: dict[str, str | Path] = {**{n: n for n in pretrained.names()}, **checkpoints}
        self.limits, self.device = limits, device
        self.loaded: dict[str, Checkpoint] = {}
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.lock = threading.Lock()
        self.root = Path(tempfile.mkdtemp(prefix="odevideo-serve-"))
        atexit.register(shutil.rmtree, self.root, True)  # the results go when the server does

    def model(self, name: str) -> Checkpoint:
        if name not in self.sources:
            raise OdevideoError(f"no model {name!r}; choose one of {', '.join(self.sources)}")
        if name not in self.loaded:
            self.loaded[name] = load_checkpoint(self.sources[name], device=self.device)
        return self.loaded[name]

    def describe(self) -> list[dict[str, object]]:
        """Each model as the page lists it: its name, what it is, its frame size and context."""
        found = []
        for name, source in self.sources.items():
            ckpt = self.model(name)
            d = ckpt.config.data
            shipped = name in pretrained.names() and source == name
            found.append({"name": name, "title": pretrained.card(name)["title"] if shipped else f"checkpoint {source}",
                          "about": pretrained.card(name)["about"] if shipped else "",
                          "kind": ckpt.config.model.kind, "size": ckpt.model.size, "channels": ckpt.model.channels,
                          "n_context": d.n_context, "n_future": d.n_frames - d.n_context,
                          "stochastic": ckpt.model.stochastic})
        return found

    def keep(self, job: Job) -> str:
        key = uuid.uuid4().hex
        self.jobs[key] = job
        while len(self.jobs) > MAX_JOBS:
            _, old = self.jobs.popitem(last=False)
            shutil.rmtree(old.folder, ignore_errors=True)
        return key

    def job(self, key: str) -> Job:
        if key not in self.jobs:
            raise OdevideoError("that result is gone (the server keeps the last few); generate again")
        return self.jobs[key]


def create_app(checkpoints: dict[str, str | Path] | None = None, limits: Limits | None = None,
               device: str = "cpu") -> FastAPI:
    """The FastAPI application: shipped models plus ``checkpoints`` (name -> file or run directory)."""
    server = Server(checkpoints or {}, limits or Limits(), device)
    app = FastAPI(title="odevideo", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_error_handlers(app, server)
    _add_reading_routes(app, server)
    _add_generating_routes(app, server)
    return app


def _add_error_handlers(app: FastAPI, server: Server) -> None:
    """Every error is a JSON ``{"error": message}``: a known one with its message, an oversized upload before it
    is read, an unknown one logged."""

    @app.middleware("http")
    async def refuse_large_bodies(request: HttpRequest, call_next):  # noqa: ANN001, ANN202
        """An upload whose declared size is over the limit is refused before it is read at all."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > server.limits.max_upload_bytes + FORM_OVERHEAD:
            return JSONResponse({"error": f"the upload is larger than the {_size(server.limits.max_upload_bytes)} an "
                                          "upload may be; cut it shorter"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(OdevideoError)
    async def known(_: HttpRequest, exc: OdevideoError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: HttpRequest, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"bad request: {problems}"}, status_code=400)

    @app.exception_handler(Exception)
    async def unknown(_: HttpRequest, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse({"error": f"the server could not do that ({type(exc).__name__}); see its log"},
                            status_code=500)


def _add_reading_routes(app: FastAPI, server: Server) -> None:
    """The page, and what it reads to draw its form: the models, the example clips and the limits."""

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/models")
    def models() -> list[dict[str, object]]:
        return server.describe()

    @app.get("/api/clips")
    def clips() -> dict[str, str]:
        return EXAMPLES

    @app.get("/api/limits")
    def limits_() -> dict[str, int]:
        return vars(server.limits)


def _add_generating_routes(app: FastAPI, server: Server) -> None:
    """Generation (a job), a frame of a job at any time, and a job's files."""

    @app.post("/api/predict")
    def predict(model: Annotated[str, Form()], clip: Annotated[str, Form()] = "",
                file: Annotated[UploadFile | None, File()] = None, n_context: Annotated[int | None, Form()] = None,
                fps_factor: Annotated[int, Form()] = 1, horizon: Annotated[float | None, Form()] = None,
                times: Annotated[str, Form()] = "", samples: Annotated[int, Form()] = 1,
                seed: Annotated[int, Form()] = 0) -> dict[str, object]:
        ckpt = server.model(model)
        folder = Path(tempfile.mkdtemp(dir=server.root))
        try:
            source, name = _read_input(file, clip, folder, server.limits)
            request = Request(n_context=n_context, fps_factor=fps_factor, horizon=horizon,
                              times=_times(times), samples=samples, seed=seed)
            with server.lock:
                result = service.run(ckpt, source, request, server.limits)
                return _publish(server, ckpt, result, folder, name, fps_factor)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    @app.get("/api/jobs/{key}/frame")
    def frame(key: str, t: Annotated[float, Query()], scale: Annotated[int, Query(ge=1, le=8)] = 1) -> Response:
        job = server.job(key)
        with server.lock:
            image = service.frame_at(job.ckpt, job.context, job.t_context, t)
        return Response(service.png_bytes(image, scale), media_type="image/png")

    @app.get("/api/jobs/{key}/{name}")
    def job_file(key: str, name: str) -> FileResponse:
        job = server.job(key)
        if name not in job.files:
            raise OdevideoError(f"no file {name!r} in that result")
        return FileResponse(job.folder / name)


def _times(text: str) -> list[float] | None:
    if not text.strip():
        return None
    try:
        return [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise OdevideoError(f"times must be numbers separated by commas, e.g. 9.5,10,10.25; got {text!r}") from None


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


class TooLarge(OdevideoError):
    status = 413


def _read_input(file: UploadFile | None, clip: str, folder: Path, limits: Limits) -> tuple[Clip, str]:
    """The uploaded file (copied with a size cap) or the example clip named ``clip`` (never a path on this
    server), and the name the page shows."""
    if file is None or not file.filename:
        if not clip:
            raise OdevideoError("choose an example clip or upload one")
        frames = example_clip(clip)
        return Clip(frames, np.arange(len(frames), dtype=np.float64)), clip
    suffix = Path(file.filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise OdevideoError(f"{file.filename}: not a clip odevideo reads; upload one of "
                            f"{', '.join(UPLOAD_SUFFIXES)}")
    path = folder / f"upload{suffix}"
    size = 0
    with open(path, "wb") as out:
        while chunk := file.file.read(1 << 20):
            size += len(chunk)
            if size > limits.max_upload_bytes:
                raise TooLarge(f"{file.filename} is larger than the {_size(limits.max_upload_bytes)} an upload may "
                               "be; cut it shorter")
            out.write(chunk)
    try:
        return read_clip(path, channels=3, max_frames=limits.max_input_frames), file.filename
    except OdevideoError as exc:  # name the file as the user knows it, not this server's copy
        raise type(exc)(str(exc).replace(str(path), file.filename)) from None


def _publish(server: Server, ckpt: Checkpoint, result: service.Result, folder: Path, name: str,
             fps_factor: int) -> dict[str, object]:
    """Write the result's videos into ``folder`` and describe it for the page."""
    fps = service.BASE_FPS * fps_factor
    files = {"generated.webm": write_frames(folder / "generated.webm", result.frames, fps=fps)}
    if result.truth is not None:
        files["truth.webm"] = write_frames(folder / "truth.webm", result.truth, fps=service.BASE_FPS)
    (folder / "context.png").write_bytes(service.png_bytes(result.context[-1]))
    files["context.png"] = folder / "context.png"
    for i, draw in enumerate(result.draws):
        files[f"sample{i}.webm"] = write_frames(folder / f"sample{i}.webm", draw, fps=fps)
    key = server.keep(Job(folder=folder, ckpt=ckpt, context=result.context, t_context=result.t_context,
                          files=set(files)))
    url = f"/api/jobs/{key}/"
    size = result.frames.shape[-1]
    return {"id": key, "clip": name, "model": ckpt.config.model.kind, "size": size,
            "channels": int(result.frames.shape[1]), "n_context": len(result.t_context),
            "t_context": result.t_context.tolist(), "t_query": result.t_query.tolist(),
            "frames": len(result.t_query), "fps": fps, "video": url + "generated.webm",
            "truth_video": url + "truth.webm" if "truth.webm" in files else None,
            "truth_frames": 0 if result.truth is None else len(result.truth),
            "context_image": url + "context.png", "errors": result.errors, "latent": result.latent,
            "samples": [url + f"sample{i}.webm" for i in range(len(result.draws))], "notes": result.notes}


def serve(host: str = "127.0.0.1", port: int = 7860, checkpoints: dict[str, str | Path] | None = None,
          limits: Limits | None = None, device: str = "cpu") -> None:
    """Run the page until interrupted."""
    import uvicorn

    uvicorn.run(create_app(checkpoints, limits, device), host=host, port=port, log_level="warning")
