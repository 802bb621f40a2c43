"""Shared fixtures: a tiny config (32x32 frames, a few thousand parameters) and a tiny trained run."""

from __future__ import annotations

import pytest
import torch

from odevideo.config import Config, load_config

# 32x32 frames and narrow layers: every model kind builds and steps in milliseconds. The latent models draw
# frames directly unless a test asks for output=warp. fp32 everywhere, so that
# results do not depend on whether this machine computes bf16 natively (train.precision=auto would).
TINY = ("data.size=32", "data.digit_size=14", "data.batch_size=4", "data.val_size=8", "model.kind=latent_ode",
        "model.width=8", "model.depth=2", "model.output=direct",
        "model.latent_dim=4", "model.field_hidden=8", "train.val_every=3", "train.log_every=1",
        "train.precision=32-true", "data.irregular=0")  # a tiny latent ODE on the demo config's data
TINY_CLI = [arg for item in TINY for arg in ("--set", item)]


KIND_TINY = {"latent_ode": (),
             "latent_rnn": ("model.width=8", "model.depth=2", "model.latent_dim=4", "model.output=direct"),
             "convlstm": ("model.hidden=8", "model.layers=2"),
             "objects": ("model.box=14", "model.sprite=16", "model.hidden=16", "model.refine_steps=5"),
             "simvp": ("data.n_context=4", "model.context=4", "model.hid_s=4", "model.hid_t=16", "model.n_t=2")}
# (another kind starts from its own defaults)


def tiny(kind: str = "latent_ode", **model: object) -> Config:
    """The demo config made tiny, with model ``kind`` and ``model`` overrides of the model section."""
    sizes = [o for o in TINY if not o.startswith("model.")] if kind != "latent_ode" else list(TINY)
    return load_config("demo", [*sizes, f"model.kind={kind}", *KIND_TINY[kind],
                                *(f"model.{k}={v}" for k, v in model.items())])


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """odevideo's cache (decoded clips, baseline scores) in a folder of the session's, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture
def tiny_config():
    """A factory: ``tiny_config(latent="vector", output="warp")`` -> a tiny :class:`Config`."""
    return tiny


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run directory trained 5 steps on the tiny config (seed 1), through the command line."""
    from odevideo.cli import main

    run_dir = tmp_path_factory.mktemp("run")
    try:
        main(["train", "--config", "demo", *TINY_CLI, "--max-steps", "5", "--seed", "1", "--out", str(run_dir),
              "--quiet"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return run_dir


@pytest.fixture
def run_cli(capsys):
    """Run the command line in-process: ``run_cli([...]) -> (exit code, stdout, stderr)``."""
    from odevideo.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        code = 0
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
