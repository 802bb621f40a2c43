"""Configs: every shipped file loads, overrides apply, unknown keys and bad values are refused."""

import pytest

from odevideo.config import SHIPPED_CONFIGS, Config, load_config
from odevideo.errors import ConfigError
from odevideo.models import build_model


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_every_shipped_config_loads_and_builds(name):
    config = load_config(name)
    model = build_model(config)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_overrides_parse_yaml_values():
    config = load_config("demo", ["train.lr=1e-4", "model.latent=vector", "solver.step_size=null",
                                  "data.mnist_dir=/tmp/x"])
    assert config.train.lr == 1e-4 and config.model.latent == "vector"
    assert config.solver.step_size is None and config.data.mnist_dir == "/tmp/x"


def test_yaml_round_trip(tmp_path):
    config = load_config("mmnist2", ["train.seed=7"])
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path) == config


@pytest.mark.parametrize("overrides,match", [
    (["train.lrr=1"], r"unknown config key.*train.lrr"),
    (["bogus.x=1"], "unknown config section"),
    (["train.objective=magic"], "objective"),
    (["solver.method=magic"], "solver.method"),
    (["data.n_context=30"], "n_context"),
    (["train.lr"], "key=value"),
    (["data.batch_size=0"], "batch_size"),
])
def test_bad_overrides_are_refused(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config("demo", overrides)


def test_unknown_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="neither a shipped config"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    assert Config.from_dict({}) == Config()


def test_values_are_coerced_to_their_field_types_or_refused():
    config = load_config("demo", ["train.lr=3e-4", "train.max_steps=10.0", "train.max_minutes=2",
                                  "model.variational=true"])
    assert config.train.lr == 3e-4 and isinstance(config.train.max_steps, int)
    assert config.train.max_minutes == 2.0 and config.model.variational is True
    for bad in ("train.max_steps=abc", "train.max_steps=1.5", "model.variational=maybe", "train.lr=[1]"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config("demo", [bad])
