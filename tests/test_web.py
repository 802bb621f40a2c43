"""odevideo serve: the API behind the page, and the page itself in a real headless browser."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402

from odevideo.data.moving_mnist import MovingMNIST  # noqa: E402
from odevideo.visualize import write_frames  # noqa: E402
from odevideo.web.app import create_app  # noqa: E402
from odevideo.web.service import Limits  # noqa: E402


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(limits=Limits(max_upload_bytes=300_000)))


def predict(client, **kwargs):
    """POST /api/predict, then poll the job until it is over: the last answer (the result, or the failure)."""
    r = client.post("/api/predict", **kwargs)
    if r.status_code != 202:
        return r
    assert r.json()["status"] in ("queued", "running")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = client.get(f"/api/jobs/{r.json()['id']}")
        if r.json().get("status") not in ("queued", "running"):
            return r
        time.sleep(0.02)
    raise AssertionError("the job never finished")


def clip_file(path: Path, n: int = 20) -> Path:
    """A 2-digit Moving MNIST clip (built-in digits) as a file of ``path``'s type."""
    clip = MovingMNIST("test", digits=2).render_uint8([5])[0][:n]  # (T, 64, 64)
    if path.suffix == ".npy":
        np.save(path, clip)
        return path
    return write_frames(path, torch.from_numpy(clip)[:, None].float() / 255, fps=4)


def test_the_page_and_its_lists(client):
    page = client.get("/")
    assert page.status_code == 200 and "<form" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http" not in client.get("/static/app.js").text.replace("http://www.w3.org/2000/svg", "")  # no calls out
    names = [m["name"] for m in client.get("/api/models").json()]
    assert {"mmnist1", "mmnist2", "balls", "natural", "mmnist2_learned"} <= set(names)
    assert "digits2" in client.get("/api/clips").json()


def test_an_uploaded_gif_at_four_times_the_frame_rate(client, tmp_path):
    gif = clip_file(tmp_path / "clip.gif")
    with open(gif, "rb") as f:
        r = predict(client, data={"model": "mmnist2", "fps_factor": "4", "n_context": "10"},
                    files={"file": ("clip.gif", f, "image/gif")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["frames"] == 40 and body["t_query"][:4] == [9.25, 9.5, 9.75, 10.0] and body["fps"] == 16
    assert [e["t"] for e in body["errors"]] == [float(t) for t in range(10, 20)]  # the truth is known there
    assert all(e["mse"] < e["copy_last_mse"] for e in body["errors"][:3])
    latent = body["latent"]
    assert latent["kind"] == "tracks" and len(latent["tracks"]) == 2  # a track per digit
    assert latent["times"][:11] == [float(t) for t in range(11)][:10] + [9.25]  # the context, then the asked times
    assert latent["observed"] == 10 and len(latent["tracks"][0]) == 10 + 40
    import av

    video = client.get(body["video"])
    assert video.status_code == 200
    (tmp_path / "out.webm").write_bytes(video.content)
    with av.open(str(tmp_path / "out.webm")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 40 and (frames[0].width, frames[0].height) == (64, 64)
    png = client.get(f"/api/jobs/{body['id']}/frame", params={"t": 12.375, "scale": 2})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"


def test_the_page_generates_what_generate_does_at_the_asked_times():
    from odevideo.data.examples import example_clip
    from odevideo.data.videos import Clip
    from odevideo.inference import generate, load_checkpoint
    from odevideo.web import service

    ckpt = load_checkpoint("balls")
    frames = example_clip("balls")
    clip = Clip(frames, np.arange(len(frames), dtype=np.float64))
    result = service.run(ckpt, clip, service.Request(fps_factor=2, horizon=3.0), Limits())
    context = torch.from_numpy(clip.frames[:10]).float() / 255
    want = generate(ckpt.model, context[None], torch.arange(10.0), result.t_query).frames[0]
    assert result.t_query.tolist() == [9.5, 10.0, 10.5, 11.0, 11.5, 12.0]
    torch.testing.assert_close(result.frames, want, atol=1e-5, rtol=0)  # the latent view's times change nothing


def test_explicit_times_samples_and_a_spatial_model(client):
    r = predict(client, data={"model": "mmnist2", "clip": "digits2", "times": "9.5, 14, 30.25",
                              "samples": "3", "seed": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["t_query"] == [9.5, 14.0, 30.25] and [e["t"] for e in body["errors"]] == [14.0]
    assert len(body["samples"]) == 3
    r = predict(client, data={"model": "balls", "clip": "balls", "fps_factor": "2"})
    assert r.status_code == 200, r.text
    assert r.json()["latent"]["kind"] == "pca" and r.json()["frames"] == 20


def test_a_colour_clip_for_a_grey_model_is_converted_and_resized(client, tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (12, 48, 80, 3), dtype=np.uint8)
    path = write_frames(tmp_path / "rgb.mp4", torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255)
    with open(path, "rb") as f:
        r = predict(client, data={"model": "balls", "n_context": "6"},
                    files={"file": ("rgb.mp4", f, "video/mp4")})
    assert r.status_code == 200, r.text
    assert r.json()["size"] == 32 and any("resized" in n for n in r.json()["notes"])


def _truncated_mp4(path: Path) -> bytes:
    return clip_file(path.with_name("full.mp4")).read_bytes()[:700]


BAD = {
    "truncated mp4": ("clip.mp4", _truncated_mp4, 400, "cannot decode"),
    "non-video": ("notes.txt", lambda p: b"not a video at all", 400, "not a clip"),
    "text named gif": ("fake.gif", lambda p: b"GIF89a but not really", 400, "cannot decode"),
    "huge file": ("big.npy", lambda p: b"\x00" * 400_000, 413, "larger than"),  # refused from its declared size
}


@pytest.mark.parametrize("case", BAD)
def test_bad_uploads_get_a_message_and_the_server_carries_on(client, tmp_path, case):
    name, content, status, message = BAD[case]
    r = predict(client, data={"model": "mmnist2"}, files={"file": (name, content(tmp_path / name))})
    assert r.status_code == status
    error = r.json()["error"]
    assert message in error and "Traceback" not in error and str(tmp_path) not in error
    assert "odevideo-serve" not in error  # the server's own paths are not shown
    assert predict(client, data={"model": "mmnist1", "clip": "digits1"}).status_code == 200


@pytest.mark.parametrize("form,message", [
    ({"model": "mmnist2", "clip": "digits2", "times": "1,a"}, "numbers separated by commas"),
    ({"model": "mmnist2", "clip": "digits2", "fps_factor": "abc"}, "fps_factor"),
    ({"model": "mmnist2", "clip": "digits2", "fps_factor": "8", "horizon": "1000"}, "more than the 400"),
    ({"model": "mmnist2", "clip": "digits2", "n_context": "50"}, "between 1 and the clip's 20"),
    ({"model": "nope", "clip": "digits2"}, "no model 'nope'"),
    ({"model": "mmnist2"}, "choose an example clip or upload"),
    ({"model": "mmnist2", "clip": "digits9"}, "no example clip"),
])
def test_bad_requests_get_a_message(client, form, message):
    r = predict(client, data=form)
    assert r.status_code == 400 and message in r.json()["error"]


def test_an_upload_over_the_limit_is_refused_while_it_is_copied_too(tmp_path):
    from odevideo.web.app import FORM_OVERHEAD

    small = TestClient(create_app(limits=Limits(max_upload_bytes=200_000)))
    content = b"\x00" * (200_000 + FORM_OVERHEAD // 2)  # over the limit, but within the form's allowance
    r = predict(small, data={"model": "mmnist2"}, files={"file": ("big.npy", content)})
    assert r.status_code == 413 and "larger than the 0 MiB" not in r.json()["error"]
    assert "larger than" in r.json()["error"]


def test_a_result_that_is_gone_says_so(client):
    for url in ("/api/jobs/0123", "/api/jobs/0123/frame?t=3", "/api/jobs/0123/generated.webm"):
        r = client.get(url)
        assert r.status_code == 404 and "generate again" in r.json()["error"]


# ---------------------------------------------------------------- the page in a real browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]  # no calls out


def _browser_or_skip() -> None:
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if not Path(CHROMIUM).is_file():
        missing.append("chromium (apt-get install chromium)")
    if missing:
        if os.environ.get("ODEVIDEO_REQUIRE_BROWSER"):  # CI installs both: there a missing browser is a failure
            pytest.fail(f"the browser test needs {' and '.join(missing)}")
        pytest.skip(f"no {' and '.join(missing)}")


@pytest.fixture(scope="module")
def live_server():
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


COUNT_FRAMES = """async () => {
  // Plays: the video advances and presents frames. Then counts them: a seek to the middle of each frame
  // interval presents that frame, and the decoder reports its timestamp (two seeks past the end: the last one).
  const v = document.querySelector('#generated');
  const fps = Number(v.dataset.fps), n = Number(v.dataset.frames);
  v.currentTime = 0; await v.play();
  const played = await new Promise((resolve) => v.requestVideoFrameCallback((now, meta) => resolve(meta)));
  await new Promise((resolve) => setTimeout(resolve, 400));
  v.pause();
  const advanced = v.currentTime > 0;
  const shown = () => Promise.race([
    new Promise((resolve) => v.requestVideoFrameCallback((now, meta) => resolve(meta.mediaTime))),
    new Promise((resolve) => setTimeout(() => resolve(null), 3000))]);
  const seen = new Set();
  for (let i = 0; i < n + 2; i++) {
    const next = shown();
    v.currentTime = Math.min((i + 0.5) / fps, v.duration);
    const t = await next;
    if (t !== null) seen.add(t.toFixed(4));
  }
  return {seen: [...seen], frames: seen.size, width: v.videoWidth, height: v.videoHeight, duration: v.duration,
          expected: n, played: played.presentedFrames, advanced};
}"""


def test_the_page_in_a_headless_browser(live_server, tmp_path):
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    gif = clip_file(tmp_path / "clip.gif")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(live_server)
            page.wait_for_function("document.querySelectorAll('#model option').length >= 4")
            page.select_option("#model", "mmnist2")
            page.set_input_files("#file", str(gif))
            page.select_option("#fps_factor", "4")
            page.click("#go")
            page.wait_for_function("document.querySelector('#generated').readyState >= 2 && "
                                   "document.querySelector('#truth').readyState >= 2", timeout=120_000)
            seen = page.evaluate(COUNT_FRAMES)
            assert seen["expected"] == 40  # 10 frame intervals at 4x
            assert seen["advanced"] and seen["played"] >= 1
            assert seen["frames"] == 40, seen["seen"]
            assert (seen["width"], seen["height"]) == (64, 64)
            assert seen["duration"] == pytest.approx(40 / 16, abs=0.07)
            assert page.locator("#error-curve polyline").count() == 2
            assert page.locator("#latent polyline").count() == 4  # per digit: its context track and its future
            page.fill("#t-slider", "12.4")
            page.dispatch_event("#t-slider", "input")
            page.wait_for_function("document.querySelector('#t-frame').complete && "
                                   "document.querySelector('#t-frame').naturalWidth === 192")
            # both videos paused at t = 12: the truth's frame 2 (4 fps), the generated frame 11 (16 fps)
            page.evaluate("""() => {
              for (const [id, s] of [['#truth', 0.6], ['#generated', 0.7]]) {
                const v = document.querySelector(id); v.pause(); v.currentTime = s; }
            }""")
            page.wait_for_timeout(300)
            shot = tmp_path / "serve.png"
            page.screenshot(path=str(shot), full_page=True)
            import imageio.v3 as iio

            image = iio.imread(shot)  # the whole page: its width, and far more than a blank page's few colours
            assert image.shape[1] == 1200 and len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 100
            if os.environ.get("ODEVIDEO_SCREENSHOT"):  # how docs/images/serve.png is made
                shutil.copy(shot, os.environ["ODEVIDEO_SCREENSHOT"])

            (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
            page.set_input_files("#file", str(tmp_path / "broken.mp4"))
            page.click("#go")
            page.wait_for_selector("#error:not([hidden])")
            assert "cannot decode broken.mp4" in page.inner_text("#error")
        finally:
            browser.close()
