"""Configs: every shipped file loads and builds the recorded model, overrides apply, unknown keys, bad values
and combinations that cannot work are refused, old checkpoints' configs are upgraded."""

import pytest

from odevideo.config import SHIPPED_CONFIGS, Config, load_config, upgrade_legacy
from odevideo.errors import ConfigError
from odevideo.models import MODELS
from odevideo.options import field_docs

# Parameter counts of the shipped configs' models (older rows of docs/benchmarks.md name 131,104, before the warp
# decoder read the source frame's features, and 140,320, before the encoder and decoder went from 2 blocks to 4).
PARAMETERS = {"demo": 450, "mmnist1": 450, "mmnist2": 450, "mmnist1_latent": 214_304, "mmnist2_latent": 214_304,
              "balls": 214_304, "kth": 214_304, "colour": 232_768, "natural64": 232_768, "pedestrians": 214_304}


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_every_shipped_config_loads_and_builds_its_recorded_model(name):
    model = load_config(name).build_model()
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name]


def test_overrides_parse_yaml_values():
    config = load_config("mmnist1_latent", ["train.lr=1e-4", "model.latent=vector", "solver.step_size=null",
                                  "data.mnist_dir=/tmp/x"])
    assert config.train.lr == 1e-4 and config.model.latent == "vector"
    assert config.solver.step_size is None and config.data.mnist_dir == "/tmp/x"


def test_another_model_kind_starts_from_its_own_defaults():
    config = load_config("mmnist2_latent", ["model.kind=convlstm", "model.hidden=32", "data.irregular=0"])
    assert config.model == MODELS["convlstm"].config(hidden=32)
    with pytest.raises(ConfigError, match=r"unknown config key.*model.width"):
        load_config("mmnist2_latent", ["model.kind=convlstm", "model.width=32", "data.irregular=0"])
    # the kind applies first, wherever it stands, so no model override before it is lost
    late = load_config("mmnist2_latent", ["model.hidden=8", "data.irregular=0", "model.kind=convlstm"])
    assert late.model.hidden == 8


def test_yaml_round_trip(tmp_path):
    for overrides in (["train.seed=7"], ["model.kind=latent_rnn", "data.irregular=0"]):
        config = load_config("mmnist2_latent", overrides)
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
    (["model.kind=gan"], "model.kind='gan' is not one of"),
    (["model.kind=convlstm"], "cannot read times off the frame grid"),  # mmnist1_latent trains on irregular times
    (["model.kind=latent_rnn", "data.irregular=0.5"], "cannot read times off the frame grid"),
    (["model.kind=objects", "model.box=20"], r"model.box \(20\) must equal the data's object size \(28"),
    (["model.kind=convlstm", "model.kernel=4"], "must be odd"),
    (["model.output=direct"], "chooses the frame a warp model warps"),  # mmnist1_latent sets warp_source
    (["model.warp_source=first"], "is not one of"),
    (["train.precision=fp8"], "train.precision"),
])
def test_bad_values_and_impossible_combinations_are_refused(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config("mmnist1_latent", overrides)


def test_unknown_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="neither a shipped config"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_an_empty_config_is_the_defaults():
    config = Config.from_dict({})
    assert config == Config() and config.model.kind == "latent_ode" and config.train.precision == "auto"


def test_values_are_coerced_to_their_field_types_or_refused():
    config = load_config("mmnist1_latent", ["train.lr=3e-4", "train.max_steps=10.0", "train.max_minutes=2",
                                     "model.variational=true"])
    assert config.train.lr == 3e-4 and isinstance(config.train.max_steps, int)
    assert config.train.max_minutes == 2.0 and config.model.variational is True


@pytest.mark.parametrize("bad", ["train.max_steps=abc", "train.max_steps=1.5", "model.variational=maybe",
                                 "train.lr=[1]", "train.accelerator=[1]"])
def test_values_of_the_wrong_type_are_refused(bad):
    with pytest.raises(ConfigError, match=bad.split("=")[0]):
        load_config("mmnist1_latent", [bad])


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
@pytest.mark.parametrize("section", ["data", "model", "solver", "train"])
def test_every_field_is_documented_and_shown(name, section):
    config = load_config(name)
    docs = field_docs(type(getattr(config, section)))
    text = config.describe()
    for name in vars(getattr(config, section)):
        assert docs.get(name), f"{section}.{name} has no documentation"
        assert docs[name].endswith((".", ")")), f"{section}.{name}'s documentation is cut short: {docs[name]!r}"
        assert f"\n  {name}: " in text


def test_a_field_doc_that_wraps_onto_a_cross_reference_is_read_whole():
    class Documented:
        """A section.

        Attributes:
            alpha: the first line (see
                :func:`somewhere`); and on.
            beta, gamma: shared.
        """

    assert field_docs(Documented) == {"alpha": "the first line (see :func:`somewhere`); and on.",
                                      "beta": "shared.", "gamma": "shared."}


def test_a_0_1_config_is_upgraded_and_one_with_a_removed_option_is_refused():
    old = load_config("mmnist2_latent").to_dict()
    old["model"].update(channels=1, aggregator="gru", skip=False, field="conv")
    old["train"]["flow_loss"] = 0.0
    assert Config.from_dict(upgrade_legacy(old)) == load_config("mmnist2_latent")
    convlstm = {"model": {"kind": "convlstm", "patch": 4, "width": 32, "depth": 2, "latent": "spatial",
                          "output": "direct", "warp_source": "previous", "channels": 1}}
    assert Config.from_dict(upgrade_legacy(convlstm)).model == MODELS["convlstm"].config(hidden=32, layers=2)
    with pytest.raises(ConfigError, match="model.skip was removed.*51a0096"):
        upgrade_legacy({"model": {"skip": True}})


def test_a_stored_latent_config_from_before_the_anchor_builds_the_model_it_was():
    from odevideo.config import without_ignored_options

    stored = load_config("balls").to_dict()
    for key in ("anchor", "source_features"):
        del stored["model"][key]
    old = Config.from_dict(without_ignored_options(stored)).model
    assert (old.anchor, old.source_features) == ("first", False)
    new = load_config("balls").model
    assert (new.anchor, new.source_features) == ("last", True)
    assert Config.from_dict(without_ignored_options(load_config("balls").to_dict())).model == new
    assert load_config("balls", ["model.output=direct", "model.warp_source=null"]).model.source_features is False
    for zero in (False, True):  # an initialisation option measured and removed: the weights load without it
        stored = {**load_config("balls").to_dict()}
        stored["model"] = {**stored["model"], "field_zero_init": zero}
        assert Config.from_dict(without_ignored_options(stored)).model == new
