"""``odevideo serve``: a web page to watch a model continue a clip at any frame rate, served on loopback.

The page (``static/``) is plain HTML and JavaScript with nothing loaded from elsewhere; there are no analytics
and no calls out. Requests:

    GET  /                      the page
    GET  /api/models            shipped models and the checkpoints given to ``serve``
    GET  /api/clips             built-in example clips
    POST /api/predict           form: model, clip or file, n_context, fps_factor, horizon, times, samples, seed;
                                queues a job: 202 {"id", "status", "poll"}, or 503 when the queue is full
    GET  /api/jobs/ID           the job: {"status": "queued" | "running", "ahead"}, then the result ("done"),
                                or {"error"} with the failure's status code
    GET  /api/jobs/ID/NAME      a file of a result (videos, the context frame)
    GET  /api/jobs/ID/frame?t=  the frame at one real time t, as a PNG

Generation runs in a job queue (:mod:`odevideo.web.jobs`): a few workers, a bounded queue (a full one is
answered 503 with a message), jobs that time out and results deleted after a while. A bad file or request is
answered with ``{"error": message}`` (400, 413 for an upload over the limit; a file that cannot be decoded
when its job runs) and the page shows the message; an unexpected failure is logged here and answered with a
short message, never a stack trace. Results live in a temporary folder removed when the server stops.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
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
from odevideo.web.jobs import Job, JobQueue, QueueLimits
from odevideo.web.service import Limits, Request

STATIC = Path(__file__).resolve().parent / "static"
FORM_OVERHEAD = 64 * 1024  # bytes of a multipart form beside the file itself
UPLOAD_SUFFIXES = (".gif", ".mp4", ".webm", ".npy", ".npz", ".avi", ".mov", ".mkv", ".m4v")
log = logging.getLogger("odevideo.web")


@dataclass
class Published:
    """A finished job's result as the page reads it: what it said (``body``), and what later requests need:
    the model, the context (for frames at other times) and the files written."""

    body: dict[str, object]
    ckpt: Checkpoint
    context: torch.Tensor
    t_context: torch.Tensor
    files: set[str]


class Server:
    """The models, and the job queue (:mod:`odevideo.web.jobs`) that generates for the page and keeps results."""

    def __init__(self, checkpoints: dict[str, str | Path], limits: Limits, device: str = "cpu",
                 queue: QueueLimits | None = None) -> None:
        self.sources: dict[str, str | Path] = {**{n: n for n in pretrained.names()}, **checkpoints}
        self.limits, self.device = limits, device
        self.loaded: dict[str, Checkpoint] = {}
        self.loading = threading.Lock()
        self.queue = JobQueue(queue or QueueLimits(), on_error=lambda exc: log.error("job failed", exc_info=exc))
        self.root = Path(tempfile.mkdtemp(prefix="odevideo-serve-"))
        atexit.register(shutil.rmtree, self.root, True)  # the results go when the server does

    def model(self, name: str) -> Checkpoint:
        if name not in self.sources:
            raise OdevideoError(f"no model {name!r}; choose one of {', '.join(self.sources)}")
        with self.loading:
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

    def published(self, key: str) -> tuple[Published, Path]:
        """The result of the finished job ``key``, and its folder."""
        job = self.queue.get(key)
        if job.status == "failed":
            raise OdevideoError(job.error or "that job failed")
        if job.status != "done" or job.folder is None:
            raise OdevideoError("that result is not ready: poll /api/jobs/ID until its status is done")
        return job.result, job.folder


def create_app(checkpoints: dict[str, str | Path] | None = None, limits: Limits | None = None,
               device: str = "cpu", queue: QueueLimits | None = None) -> FastAPI:
    """The FastAPI application: shipped models plus ``checkpoints`` (name -> file or run directory), requests
    within ``limits``, generation by the job queue ``queue`` (workers, waiting jobs, timeouts)."""
    server = Server(checkpoints or {}, limits or Limits(), device, queue)
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
    """Generation (a queued job), its status and result, a frame of a result at any time, and its files."""

    @app.post("/api/predict", status_code=202)
    def predict(model: Annotated[str, Form()], clip: Annotated[str, Form()] = "",
                file: Annotated[UploadFile | None, File()] = None, n_context: Annotated[int | None, Form()] = None,
                fps_factor: Annotated[int, Form()] = 1, horizon: Annotated[float | None, Form()] = None,
                times: Annotated[str, Form()] = "", samples: Annotated[int, Form()] = 1,
                seed: Annotated[int, Form()] = 0) -> dict[str, object]:
        ckpt = server.model(model)
        request = Request(n_context=n_context, fps_factor=fps_factor, horizon=horizon, times=_times(times),
                          samples=samples, seed=seed)
        folder = Path(tempfile.mkdtemp(dir=server.root))
        try:
            source, name = _take_input(file, clip, folder, server.limits)

            def work(job: Job) -> Published:
                clip_ = _read_input(source, file.filename if file is not None and file.filename else name,
                                    server.limits)
                result = service.run(ckpt, clip_, request, server.limits)
                return _publish(ckpt, result, folder, name, fps_factor, job.id)

            job = server.queue.submit(work, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return {"id": job.id, "status": job.status, "poll": f"/api/jobs/{job.id}"}

    @app.get("/api/jobs/{key}")
    def status(key: str) -> JSONResponse:
        job = server.queue.get(key)
        if job.status == "failed":
            return JSONResponse({"id": key, "status": "failed", "error": job.error}, status_code=job.error_status)
        if job.status == "done":
            return JSONResponse({"id": key, "status": "done", **job.result.body})
        return JSONResponse({"id": key, "status": job.status, "ahead": server.queue.position(job)})

    @app.get("/api/jobs/{key}/frame")
    def frame(key: str, t: Annotated[float, Query()], scale: Annotated[int, Query(ge=1, le=8)] = 1) -> Response:
        done, _ = server.published(key)
        image = server.queue.run_now(lambda: service.frame_at(done.ckpt, done.context, done.t_context, t))
        return Response(service.png_bytes(image, scale), media_type="image/png")

    @app.get("/api/jobs/{key}/{name}")
    def job_file(key: str, name: str) -> FileResponse:
        done, folder = server.published(key)
        if name not in done.files:
            raise OdevideoError(f"no file {name!r} in that result")
        return FileResponse(folder / name)  # ranges, for the video element's seeks


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


def _take_input(file: UploadFile | None, clip: str, folder: Path, limits: Limits) -> tuple[Path | str, str]:
    """The uploaded file, copied into ``folder`` with a size cap (decoded later, by the job), or the name of an
    example clip (never a path on this server); and the name the page shows."""
    if file is None or not file.filename:
        if not clip:
            raise OdevideoError("choose an example clip or upload one")
        if clip not in EXAMPLES:
            raise OdevideoError(f"no example clip {clip!r}; choose one of {', '.join(EXAMPLES)}")
        return clip, clip
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
    return path, file.filename


def _read_input(source: Path | str, name: str, limits: Limits) -> Clip:
    """The clip: an example clip's frames, or the uploaded file decoded (errors name it as the user knows it)."""
    if isinstance(source, str):
        frames = example_clip(source)
        return Clip(frames, np.arange(len(frames), dtype=np.float64))
    try:
        clip = read_clip(source, channels=3, max_frames=limits.max_input_frames)
    except OdevideoError as exc:  # name the file as the user knows it, not this server's copy
        raise type(exc)(str(exc).replace(str(source), name)) from None
    source.unlink()  # the frames are read; the upload is not kept
    return clip


def _publish(ckpt: Checkpoint, result: service.Result, folder: Path, name: str, fps_factor: int,
             key: str) -> Published:
    """Write the result's videos into ``folder`` and describe it for the page."""
    fps = service.BASE_FPS * fps_factor
    files = {"generated.webm": write_frames(folder / "generated.webm", result.frames, fps=fps)}
    if result.truth is not None:
        files["truth.webm"] = write_frames(folder / "truth.webm", result.truth, fps=service.BASE_FPS)
    (folder / "context.png").write_bytes(service.png_bytes(result.context[-1]))
    files["context.png"] = folder / "context.png"
    for i, draw in enumerate(result.draws):
        files[f"sample{i}.webm"] = write_frames(folder / f"sample{i}.webm", draw, fps=fps)
    url = f"/api/jobs/{key}/"
    size = result.frames.shape[-1]
    body = {"clip": name, "model": ckpt.config.model.kind, "size": size,
            "channels": int(result.frames.shape[1]), "n_context": len(result.t_context),
            "t_context": result.t_context.tolist(), "t_query": result.t_query.tolist(),
            "frames": len(result.t_query), "fps": fps, "video": url + "generated.webm",
            "truth_video": url + "truth.webm" if "truth.webm" in files else None,
            "truth_frames": 0 if result.truth is None else len(result.truth),
            "context_image": url + "context.png", "errors": result.errors, "latent": result.latent,
            "samples": [url + f"sample{i}.webm" for i in range(len(result.draws))], "notes": result.notes}
    return Published(body=body, ckpt=ckpt, context=result.context, t_context=result.t_context, files=set(files))


def serve(host: str = "127.0.0.1", port: int = 7860, checkpoints: dict[str, str | Path] | None = None,
          limits: Limits | None = None, device: str = "cpu", queue: QueueLimits | None = None) -> None:
    """Run the page until interrupted."""
    import uvicorn

    uvicorn.run(create_app(checkpoints, limits, device, queue), host=host, port=port, log_level="warning")
