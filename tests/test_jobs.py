"""The page's job queue: bounded, every job accounted for; and the page under 4 concurrent clients."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from odevideo.errors import DataError, OdevideoError
from odevideo.web.jobs import Busy, Gone, JobQueue, QueueLimits


def wait(queue: JobQueue, key: str, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = queue.get(key)
        if job.over:
            return job
        time.sleep(0.005)
    raise AssertionError("the job never ended")


def test_a_full_queue_refuses_with_a_message_and_takes_work_again_when_it_drains():
    queue = JobQueue(QueueLimits(workers=1, queue=2), on_error=print)
    gate = threading.Event()
    jobs = [queue.submit(lambda job, i=i: gate.wait(5) and i) for i in range(3)]  # 1 running + 2 waiting
    with pytest.raises(Busy, match="busy") as refused:
        queue.submit(lambda job: 99)
    assert refused.value.status == 503
    assert queue.position(jobs[2]) == 1  # one queued ahead of it
    gate.set()
    assert [wait(queue, j.id).result for j in jobs] == [0, 1, 2]
    assert wait(queue, queue.submit(lambda job: 7).id).result == 7
    assert queue.counts["done"] == 4 and queue.counts["refused"] == 1


def test_failures_keep_their_message_and_status():
    errors = []
    queue = JobQueue(QueueLimits(), on_error=errors.append)

    def bad_input(job):
        raise DataError("that clip has 3 frames")

    def bug(job):
        raise ZeroDivisionError

    first, second = wait(queue, queue.submit(bad_input).id), wait(queue, queue.submit(bug).id)
    assert (first.status, first.error, first.error_status) == ("failed", "that clip has 3 frames", 400)
    assert second.status == "failed" and second.error_status == 500 and "ZeroDivisionError" in second.error
    assert len(errors) == 1  # the unexpected one is logged


def test_a_job_past_its_time_fails_and_its_late_result_is_dropped(tmp_path):
    queue = JobQueue(QueueLimits(timeout_s=0.2), on_error=print)
    folder = tmp_path / "job"
    folder.mkdir()
    job = queue.submit(lambda job: time.sleep(0.5) or "late", folder)
    time.sleep(0.3)
    late = queue.get(job.id)
    assert late.status == "failed" and "timed out" in late.error and late.error_status == 504
    time.sleep(0.4)  # the work ends after its time: its result and files are thrown away
    assert queue.get(job.id).result is None and not folder.exists()
    assert queue.pending == 0  # and its worker is free again


def test_results_expire_after_their_time_and_beyond_the_last_few(tmp_path):
    queue = JobQueue(QueueLimits(keep_s=0.3, max_kept=2), on_error=print)
    folders = [tmp_path / str(i) for i in range(3)]
    jobs = []
    for folder in folders:
        folder.mkdir()
        jobs.append(wait(queue, queue.submit(lambda job: "ok", folder).id))
    queue.get(jobs[2].id)  # any call sweeps: only the newest 2 are kept
    assert not folders[0].exists() and folders[1].exists()
    with pytest.raises(Gone, match="generate again"):
        queue.get(jobs[0].id)
    time.sleep(0.4)
    with pytest.raises(Gone):
        queue.get(jobs[2].id)
    assert not any(f.exists() for f in folders) and queue.counts["expired"] == 3


def test_small_work_runs_beside_the_jobs_without_counting_as_a_result(tmp_path):
    queue = JobQueue(QueueLimits(workers=1, max_kept=1), on_error=print)
    folder = tmp_path / "kept"
    folder.mkdir()
    kept = wait(queue, queue.submit(lambda job: "video", folder).id)
    assert [queue.run_now(lambda i=i: i * i) for i in range(3)] == [0, 1, 4]  # frames: no jobs, no sweep
    assert queue.get(kept.id).result == "video" and folder.exists()
    gate = threading.Event()
    busy = threading.Thread(target=queue.run_now, args=(lambda: gate.wait(5),))
    busy.start()
    time.sleep(0.05)
    with pytest.raises(Busy):  # the one slot is taken for longer than a second
        queue.run_now(lambda: 1)
    gate.set()
    busy.join()


def test_limits_are_checked():
    with pytest.raises(OdevideoError, match="workers"):
        QueueLimits(workers=0)
    with pytest.raises(OdevideoError, match="timeout_s"):
        QueueLimits(timeout_s=0)


def test_four_concurrent_clients_every_job_done_or_refused_with_503_none_lost(tmp_path):
    """The page's server (uvicorn, a tiny model, 1 worker and 1 place in the queue) under 4 clients that each
    send 3 jobs and poll them: every job ends done, or is refused at once with 503 and a message."""
    pytest.importorskip("fastapi")
    import httpx
    import uvicorn
    from conftest import tiny

    from odevideo.inference import save_checkpoint
    from odevideo.web.app import create_app

    config = tiny()
    path = save_checkpoint(tmp_path / "tiny.safetensors", config.build_model(), config, step=0)
    app = create_app({"tiny": path}, queue=QueueLimits(workers=1, queue=1, timeout_s=60))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    outcomes: list[tuple[int, str]] = []

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(3):
                r = http.post("/api/predict", data={"model": "tiny", "clip": "digits2", "fps_factor": "4"})
                if r.status_code == 202:
                    while (r := http.get(f"/api/jobs/{r.json()['id']}")).json()["status"] in ("queued", "running"):
                        time.sleep(0.01)
                outcomes.append((r.status_code, r.json().get("status") or r.json()["error"]))

    try:
        clients = [threading.Thread(target=client) for _ in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(120)
    finally:
        server.should_exit = True
        thread.join(10)
    assert len(outcomes) == 12
    assert all(o in ((200, "done"),) or (o[0] == 503 and "busy" in o[1]) for o in outcomes), outcomes
    assert (200, "done") in outcomes
    counts = app.state.server.queue.counts
    assert counts["submitted"] == counts["done"] and counts["failed"] == counts["timed_out"] == 0
    assert counts["refused"] == sum(o[0] == 503 for o in outcomes)
