"""Experiment configuration: the single source of defaults.

A config is four dataclasses (data, model, solver, train) nested in :class:`Config`. YAML files only
override these defaults; ``load_config`` reads a shipped name (``demo``, ``mmnist1``, ``mmnist2``) or a
path, then applies ``key=value`` overrides such as ``train.lr=3e-4``. Every field is validated in
``__post_init__`` so a bad value fails before any training starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from odevideo.errors import ConfigError

SHIPPED_CONFIGS = ("demo", "mmnist1", "mmnist2")


def _check_choice(obj: Any, name: str) -> None:
    hint = get_type_hints(type(obj))[name]
    choices = get_args(hint)
    value = getattr(obj, name)
    if value not in choices:
        raise ConfigError(f"{type(obj).__name__.lower()}.{name}={value!r} is not one of {list(choices)}")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the field's annotated type (YAML reads ``1e-4`` as a string)."""
    args = get_args(hint)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "")):
            return None
        hint = next(a for a in args if a is not type(None))
        args = get_args(hint)
    if args and all(isinstance(a, str) for a in args):  # Literal choices: checked in __post_init__
        return value
    try:
        if hint is bool:
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError
            return value
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if hint is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a valid {getattr(hint, '__name__', hint)}") from None
    return value


def _check_positive(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{name} must be > 0, got {getattr(obj, name)!r}")


@dataclass
class DataConfig:
    """Moving MNIST sequences.

    Attributes:
        digits: digits per sequence (1..K).
        size: canvas side in pixels.
        digit_size: digit side in pixels (MNIST digits are 28x28; other sizes are resampled).
        n_frames: frames per sequence (context + target).
        n_context: conditioning frames; the rest are targets.
        batch_size: sequences per training step.
        val_size: sequences in the fixed validation set.
        mnist_dir: folder with the MNIST IDX files; ``None`` uses the digits shipped in the package.
        seed: seed of the data streams (training stream, validation and test sets).
        irregular: fraction of training sequences sampled at irregular real times (context at random times in
            the context window, targets at random times in the whole sequence) instead of 0, 1, 2, ...; > 0
            teaches the model the continuum between frames. Validation stays on the frame grid.
        irregular_span: the longest context window of irregular sequences, in frames; each such sequence
            then draws its window length uniformly between ``n_context - 1`` and this (up to ``n_frames - 1``),
            so the model also learns contexts spread over a longer time, with gaps to fill between them.
            ``None``: the standard window, ``n_context - 1``.
    """

    digits: int = 1
    size: int = 64
    digit_size: int = 28
    n_frames: int = 20
    n_context: int = 10
    batch_size: int = 32
    val_size: int = 256
    mnist_dir: str | None = None
    seed: int = 0
    irregular: float = 0.0
    irregular_span: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.irregular <= 1.0:
            raise ConfigError(f"data.irregular must be a fraction in [0, 1], got {self.irregular}")
        if self.irregular_span is not None and not self.n_context - 1 <= self.irregular_span <= self.n_frames - 1:
            raise ConfigError(f"data.irregular_span must be between n_context - 1 = {self.n_context - 1} and "
                              f"n_frames - 1 = {self.n_frames - 1} frames, got {self.irregular_span}")
        _check_positive(self, "digits", "size", "digit_size", "n_frames", "n_context", "batch_size", "val_size")
        if self.digit_size > self.size:
            raise ConfigError(f"digit_size {self.digit_size} is larger than the canvas {self.size}")
        if self.n_context >= self.n_frames:
            raise ConfigError(f"n_context {self.n_context} must be smaller than n_frames {self.n_frames}")


@dataclass
class ModelConfig:
    """Model architecture.

    Attributes:
        kind: ``latent_ode`` (ours), ``latent_rnn`` (the same model with a discrete recurrence in place of the
            ODE: the ablation) or ``convlstm`` (baseline; uses ``patch``, ``width`` = hidden channels per layer
            and ``depth`` = layers).
        latent: ``vector`` (z is a D-vector, MLP vector field) or ``spatial`` (z is a D x h x w map,
            convolutional vector field).
        channels: image channels (1 for Moving MNIST).
        patch: pixels folded into channels before the first convolution (space-to-depth).
        width: channels of the encoder and decoder convolutions.
        depth: convolution blocks in the encoder and in the decoder.
        downsample: extra stride-2 stages after the patch folding (spatial size = size / patch / 2**downsample).
        latent_dim: D, the latent size (vector) or latent channels (spatial).
        field_hidden: hidden width of the vector field.
        field_layers: hidden layers of the vector field.
        aggregator: how the context features become z0: a GRU run backwards over the context frames.
        variational: z0 drawn from N(mean, exp(logvar)) with a KL term, instead of deterministic.
        field: vector field of spatial latents: ``conv`` (tanh hidden layers) or ``gated`` (multiplicative).
        skip: feed the decoder the last context frame's encoder features (content) beside z(t).
        output: ``direct`` (the decoder draws every frame) or ``warp`` (Vid-ODE-style composition: the last
            context frame warped by a decoded flow, blended through a decoded mask with a drawn frame).
        warp_source: the frame a ``warp`` model warps to each query time: the ``last`` context frame, or the
            ``previous`` one (the latest context frame at or before the query time; the same as ``last`` beyond
            the context, a nearby frame between context frames). With ``previous`` the decoder is also told
            the time gap from that frame to the query.
    """

    kind: Literal["latent_ode", "latent_rnn", "convlstm"] = "latent_ode"
    latent: Literal["vector", "spatial"] = "spatial"
    channels: int = 1
    patch: int = 4
    width: int = 32
    depth: int = 2
    downsample: int = 0
    latent_dim: int = 16
    field_hidden: int = 32
    field_layers: int = 1
    aggregator: Literal["gru"] = "gru"
    variational: bool = False
    field: Literal["conv", "gated"] = "conv"
    skip: bool = False
    output: Literal["direct", "warp"] = "direct"
    warp_source: Literal["last", "previous"] = "last"

    def __post_init__(self) -> None:
        _check_choice(self, "kind")
        _check_choice(self, "output")
        _check_choice(self, "warp_source")
        _check_choice(self, "latent")
        _check_choice(self, "field")
        _check_choice(self, "aggregator")
        _check_positive(self, "channels", "patch", "width", "latent_dim", "field_hidden", "field_layers")
        if self.depth < 1 or self.downsample < 0:
            raise ConfigError("model.depth must be >= 1 and model.downsample >= 0")


@dataclass
class SolverConfig:
    """ODE solver options, passed to :func:`odevideo.ode.solve`.

    Attributes:
        method: a torchdiffeq method name (``dopri5``, ``rk4``, ``euler``, ...).
        rtol, atol: tolerances of adaptive methods.
        step_size: step of fixed-step methods, in time units (a frame is one unit); ``None`` steps from one
            requested time to the next.
        adjoint: backpropagate with the adjoint method (O(1) memory in time, more compute).
        max_nfe: function evaluations allowed per solve; beyond it the solve fails with ``SolverError``.
    """

    method: str = "rk4"
    rtol: float = 1e-3
    atol: float = 1e-4
    step_size: float | None = 0.5
    adjoint: bool = False
    max_nfe: int = 10_000

    def __post_init__(self) -> None:
        from odevideo.ode.solve import METHODS

        if self.method not in METHODS:
            raise ConfigError(f"solver.method={self.method!r} is not one of {sorted(METHODS)}")
        _check_positive(self, "rtol", "atol", "max_nfe")
        if self.step_size is not None and self.step_size <= 0:
            raise ConfigError(f"solver.step_size must be > 0 or null, got {self.step_size}")


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
        kl_weight: weight of the KL term (variational models only).
        flow_loss: weight of an auxiliary coarse-to-fine flow loss for ``model.output=warp`` (the source frame
            blurred at several scales and warped by the decoded flow, against the target blurred alike: it
            teaches the flow displacements larger than a pixel or two); 0 turns it off.
        grad_clip: gradient-norm clip; 0 disables it.
        val_every: validate (and write checkpoints) every this many steps.
        log_every: write per-step metrics every this many steps.
        precision: Lightning precision (``32-true``, ``bf16-mixed``, ``16-mixed``).
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
    flow_loss: float = 0.0
    grad_clip: float = 1.0
    val_every: int = 200
    log_every: int = 10
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "32-true"
    accelerator: str = "auto"
    devices: str = "1"
    num_nodes: int = 1
    strategy: str = "auto"
    on_failure: Literal["skip", "stop"] = "skip"
    keep_last: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("objective", "loss", "precision", "clock", "on_failure"):
            _check_choice(self, name)
        _check_positive(self, "lr", "max_steps", "val_every", "log_every", "num_nodes", "keep_last")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"train.max_minutes must be > 0 or null, got {self.max_minutes}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0 or self.kl_weight < 0 \
                or self.flow_loss < 0:
            raise ConfigError("train.warmup_steps, weight_decay, grad_clip, kl_weight and flow_loss must be >= 0")


@dataclass
class Config:
    """A whole experiment: data, model, solver and training."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, tree: dict[str, Any] | None) -> Config:
        """Build a config from a (possibly partial) nested dict; unknown keys are an error."""
        tree = tree or {}
        if not isinstance(tree, dict):
            raise ConfigError(f"a config must be a mapping of sections, got {type(tree).__name__}")
        sections = {f.name: f.default_factory for f in dataclasses.fields(cls)}  # type: ignore[misc]
        unknown = set(tree) - set(sections)
        if unknown:
            raise ConfigError(f"unknown config section(s) {sorted(unknown)}; known: {sorted(sections)}")
        built = {}
        for name, factory in sections.items():
            values = tree.get(name) or {}
            if not isinstance(values, dict):
                raise ConfigError(f"config section {name!r} must be a mapping, got {values!r}")
            known = {f.name for f in dataclasses.fields(factory())}
            bad = set(values) - known
            if bad:
                raise ConfigError(f"unknown config key(s) {sorted(f'{name}.{k}' for k in bad)}; "
                                  f"known in {name}: {sorted(known)}")
            hints = get_type_hints(factory)
            values = {k: _coerce(v, hints[k], f"{name}.{k}") for k, v in values.items()}
            built[name] = factory(**values)
        return cls(**built)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


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


def read_config_file(name_or_path: str | Path) -> dict[str, Any]:
    """Read a shipped config by name, or a YAML file by path, into a nested dict."""
    import yaml

    text: str
    if str(name_or_path) in SHIPPED_CONFIGS:
        text = resources.files("odevideo").joinpath(f"configs/{name_or_path}.yaml").read_text()
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"config {str(name_or_path)!r} is neither a shipped config "
                              f"{list(SHIPPED_CONFIGS)} nor an existing file")
        text = path.read_text()
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {str(name_or_path)!r} is not valid YAML: {exc}") from None
    return tree or {}


def load_config(name_or_path: str | Path = "demo", overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a config by shipped name or path and apply ``section.key=value`` overrides.

    Raises:
        ConfigError: unknown file, section or key, or an invalid value.
    """
    tree = read_config_file(name_or_path)
    for item in overrides:
        (section, key), value = _parse_override(item)
        tree.setdefault(section, {})
        if not isinstance(tree[section], dict):
            raise ConfigError(f"config section {section!r} is not a mapping")
        tree[section][key] = value
    return Config.from_dict(tree)
