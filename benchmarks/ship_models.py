"""Copy the best trained models into the package (src/odevideo/pretrained/), each with its card.

    python benchmarks/ship_models.py            # every model below, from its run directory
    python benchmarks/ship_models.py mmnist2    # only some

For each model: the run's best checkpoint is written again with the paths of this machine taken out of its
config (``data.mnist_dir``, ``data.path``, ``data.cache_dir``: a user points them at their own data), and the
card ``NAME.json`` gathers the benchmark rows that scored that very run directory (their results file, command,
commit and machine are copied with them) and a ``check``: the model's score on a small test set that needs no
download (built-in digits, or rendered bouncing balls), which ``tests/test_pretrained.py`` recomputes. The run
directories are those of the benchmark sittings named in docs/benchmarks.md; they are not in git.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from pathlib import Path

from common import RESULTS, provenance

from odevideo import pretrained
from odevideo.config import Config
from odevideo.evaluation import evaluate, test_split
from odevideo.inference import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parent
RUNS = ROOT / "runs"
CHECK_N = 32
# quality.py's results files: the headline MSE
QUALITY = ("quality.json", "balls.json", "natural.json", "natural_train.json", "learned_balls.json",
           "learned_mmnist2.json")

MODELS = {
    "mmnist1": {
        "run": "objects-1step-mmnist1-prediction-10.0min-seed0",
        "title": "object latent ODE, 1-digit Moving MNIST",
        "about": "Its fitted encoder alone (1 training step; the force is still zero): on 1 digit, training the "
                 "force for 30 minutes scored worse (23.2 against 21.9).",
    },
    "mmnist2": {
        "run": "objects-mmnist2-prediction-10.0min-seed0",
        "title": "object latent ODE, 2-digit Moving MNIST",
        "about": "10 CPU-minutes of training (the force). About a quarter of the test sequences, where the digits "
                 "overlap through much of the context, get a wrong track; --samples K draws other tracks.",
    },
    "balls": {
        "run": "i23o/latent_ode-balls-prediction-30.0min-seed0",
        "title": "spatial latent ODE, 3 bouncing balls (32x32, grey)",
        "about": "30 CPU-minutes of training (issue 23's design: latent at the last context frame, the warped "
                 "frame's features to the decoder, midpoint solver, encoder and decoder 4 blocks deep). SimVP "
                 "(not shipped: it has no continuous time), trained beside it for as long, scores better at 10 "
                 "frames (see the card's rows).",
    },
    "mmnist2_learned": {
        "run": "i23p/latent_ode-mmnist2_latent-prediction-30.0min-seed0",
        "title": "spatial latent ODE, 2-digit Moving MNIST, learned end to end",
        "about": "30 CPU-minutes of training on 2-digit Moving MNIST (full MNIST training digits), every "
                 "parameter learned: no object count, no bounce rule, no fitting at test time. The fitted "
                 "tracker `mmnist2` scores far better on Moving MNIST; this one is what the latent ODE learns "
                 "from the same data. Its check runs on the built-in digits.",
    },
    "natural": {
        "run": "natural64b/latent_ode-natural64-prediction-30.0min-seed0",
        "title": "spatial latent ODE, natural video (64x64 RGB)",
        "about": "30 CPU-minutes on the natural-video benchmark's training split (benchmarks/natural_clips.py: "
                 "Big Buck Bunny and 27 camera clips, 23,963 frames): it does NOT beat copying the last frame on "
                 "the held-out camera footage. A starting point for your own videos, not a model of natural "
                 "video. Its check runs on rendered colour balls, only to catch changes.",
        "check_data": {"kind": "bouncing_balls", "size": 64, "colour": True},
    },
}
CLEARED = {"mnist_dir": None, "path": "", "cache_dir": None}  # this machine's paths: the user's own data instead


def shipped_config(config: Config) -> Config:
    data = config.data
    changes = {k: v for k, v in CLEARED.items() if hasattr(data, k)}
    return dataclasses.replace(config, data=dataclasses.replace(data, **changes))


def check_config(config: Config, spec: dict[str, object]) -> dict[str, object]:
    """The data section of the card's check: the model's own dataset (built-in digits), or ``check_data``."""
    tree = config.to_dict()
    if "check_data" in spec:
        keep = {k: tree["data"][k] for k in ("n_frames", "n_context")}
        tree["data"] = {**keep, **spec["check_data"]}
    return Config.from_dict(tree).to_dict()["data"]


def check(model, config: Config, data: dict[str, object]) -> dict[str, object]:  # noqa: ANN001
    """The model's scores on the first CHECK_N test sequences (seed 0) of ``data``."""
    tree = config.to_dict()
    tree["data"] = data
    d = Config.from_dict(tree).data
    split = test_split(d, n=CHECK_N, seed=0)
    scores = evaluate(model, split["frames"], n_context=d.n_context, n_future=d.n_frames - d.n_context,
                      times=split["times"], perceptual=False)
    return {"data": data, "n": CHECK_N, "seed": 0, "mse": scores["mse"], "ssim": scores["ssim"],
            "copy_last_mse": scores["baselines"]["copy_last"]["mse"]}


def benchmark_rows(run: str) -> list[dict[str, object]]:
    """Every results row that scored the run directory ``run``: the scores and where they come from."""
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        rows = json.loads(path.read_text())
        for row in rows if isinstance(rows, list) else []:
            if run in str(row.get("checkpoint", "")) or _quality_run(row) == run:
                keep = {k: row[k] for k in ("method", "model", "mse", "ssim", "psnr", "fvd", "lpips", "test_set",
                                           "sitting", "command", "git_commit", "date") if k in row}
                baselines = row.get("baselines")
                copy_last = baselines.get("copy_last") if isinstance(baselines, dict) else None
                if isinstance(copy_last, dict) and "mse" in copy_last:
                    keep["copy_last_mse"] = copy_last["mse"]
                if "samples" in row:
                    keep["best_of_k_mse"] = row["samples"]["best_of_k"]["mse"]
                    keep["k"] = row["samples"]["k"]
                keep["machine"] = row.get("machine", {}).get("cpu")
                found.append({"results": f"benchmarks/results/{path.name}", **keep})
    return found


def headline(rows: list[dict[str, object]]) -> dict[str, object]:
    """The scores ``odevideo models`` shows: test MSE beside copy-last's (the quality row), FVD and LPIPS (the
    perceptual row) and the best of K (the samples row), each with the results file it comes from."""
    out: dict[str, object] = {}
    for row in rows:
        if Path(str(row["results"])).name in QUALITY and "mse" not in out:
            out.update(mse=row["mse"], copy_last_mse=row["copy_last_mse"], test_set=row.get("test_set"),
                       mse_from=row["results"])
        if "fvd" in row and "fvd" not in out:
            out.update(fvd=row["fvd"], lpips=row.get("lpips"), fvd_from=row["results"])
        if "best_of_k_mse" in row and "best_of_k_mse" not in out:
            out.update(best_of_k_mse=row["best_of_k_mse"], k=row["k"], best_of_k_from=row["results"])
    return out


def _quality_run(row: dict[str, object]) -> str | None:
    """The run directory a quality.py row trained (its command names the model, config, objective, budget,
    seed and --runs)."""
    command = str(row.get("command", ""))
    if "benchmarks/quality.py" not in command or "minutes" not in row:
        return None
    name = f"{row['model']}-{row['config']}-{row['objective']}-{row['minutes']}min-seed{row['seed']}"
    runs = command.split("--runs ")[1].split()[0] if "--runs " in command else ""
    sub = Path(runs).name if runs and Path(runs).name != "runs" else ""
    return f"{sub}/{name}" if sub else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    for name in args.names:
        spec = MODELS[name]
        ckpt = load_checkpoint(RUNS / spec["run"])
        config = shipped_config(ckpt.config)
        out = save_checkpoint(pretrained.HERE / f"{name}.safetensors", ckpt.model, config, step=ckpt.step,
                              val_mse=ckpt.val_mse)
        card = {"name": name, "title": spec["title"], "about": spec["about"], "kind": config.model.kind,
                "channels": ckpt.model.channels, "size": config.data.size,
                "n_context": config.data.n_context, "n_future": config.data.n_frames - config.data.n_context,
                "parameters": ckpt.n_parameters, "train_steps": ckpt.step, "run": f"benchmarks/runs/{spec['run']}",
                "train_command": (RUNS / spec["run"] / "command.txt").read_text().strip()
                if (RUNS / spec["run"] / "command.txt").is_file() else None,
                "headline": headline(rows := benchmark_rows(spec["run"])), "benchmarks": rows,
                "check": check(ckpt.model, config, check_config(config, spec)),
                "shipped": {"date": datetime.date.today().isoformat(), **provenance()}}
        (pretrained.HERE / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
        print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB), check MSE {card['check']['mse']:.2f}, "
              f"{len(card['benchmarks'])} benchmark rows")


if __name__ == "__main__":
    main()
