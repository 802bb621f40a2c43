"""Checkpoints: round trip to identical outputs, directory resolution, clear errors, no pickle."""

import pytest
import torch

from odevideo.errors import CheckpointError
from odevideo.inference import load_checkpoint, save_checkpoint


def test_round_trip_gives_identical_outputs(tiny_config, tmp_path):
    config = tiny_config(latent="spatial")
    model = config.build_model().eval()
    path = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors", model, config, step=12,
                           val_mse=3.5)
    frames, t = torch.rand(2, 3, 1, 32, 32), torch.arange(3.0)
    query = torch.tensor([0.0, 2.5, 8.0])
    loaded = load_checkpoint(tmp_path / "run")  # a run directory resolves to its best checkpoint
    assert loaded.path == path and loaded.step == 12 and loaded.val_mse == 3.5 and loaded.config == config
    torch.testing.assert_close(loaded.model(frames, t, query).logits, model(frames, t, query).logits,
                               atol=0, rtol=0)
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())


def test_corrupt_truncated_and_foreign_files_are_refused(tiny_config, tmp_path):
    config = tiny_config()
    path = save_checkpoint(tmp_path / "a.safetensors", config.build_model(), config, step=0)
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.safetensors"):
        load_checkpoint(tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="without checkpoints"):
        load_checkpoint(tmp_path)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not an odevideo checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")


def test_a_pickle_disguised_as_a_checkpoint_does_not_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.safetensors")
    assert not marker.exists()


@pytest.mark.parametrize("kind,model", [("latent_ode", {"latent": "vector", "field_layers": 2}),
                                        ("latent_rnn", {"output": "warp", "warp_source": "previous"}),
                                        ("convlstm", {"hidden": 6, "layers": 3, "kernel": 3}),
                                        ("objects", {"slots": 3, "sprite_pool": "min"})])
def test_every_kind_round_trips_with_its_own_sizes(tiny_config, tmp_path, kind, model):
    config = tiny_config(kind, **model)
    built = config.build_model().eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", built, config, step=3))
    assert loaded.config == config
    frames, t = torch.rand(1, 3, 1, 32, 32), torch.arange(3.0)
    torch.testing.assert_close(loaded.model(frames, t, t + 1).logits, built(frames, t, t + 1).logits, atol=0, rtol=0)


def test_a_checkpoint_of_odevideo_0_1_loads(tiny_config, tmp_path):
    import json

    from safetensors.torch import save_file

    config = tiny_config("convlstm", hidden=8, layers=2)
    model = config.build_model()
    old = {"data": config.to_dict()["data"], "train": {**config.to_dict()["train"], "flow_loss": 0.0},
           "model": {"kind": "convlstm", "latent": "spatial", "channels": 1, "patch": 4, "width": 8, "depth": 2,
                     "skip": False, "field": "conv", "aggregator": "gru", "output": "direct", "warp_source": "last"}}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "old.safetensors"),
              metadata={"format": "odevideo/1", "config": json.dumps(old), "step": "7", "val_mse": ""})
    loaded = load_checkpoint(tmp_path / "old.safetensors")
    assert loaded.config.model == config.model and loaded.step == 7 and loaded.val_mse is None


def test_a_direct_model_stored_with_the_warp_source_it_ignored_loads(tiny_config, tmp_path):
    import json

    from safetensors.torch import save_file

    config = tiny_config()  # output=direct, no warp_source
    tree = config.to_dict()
    tree["model"]["warp_source"] = "last"  # what earlier versions stored for every latent model
    save_file({k: v.contiguous() for k, v in config.build_model().state_dict().items()},
              str(tmp_path / "old.safetensors"), metadata={"format": "odevideo/2", "config": json.dumps(tree),
                                                           "step": "1", "val_mse": ""})
    assert load_checkpoint(tmp_path / "old.safetensors").config == config
