"""Option dataclasses: checks of their values, coercion of text to their field types, and their field docs.

Every options dataclass (the config sections, each model kind's config, the solver's) validates itself in
``__post_init__`` with these helpers, so a bad value fails with a message before any work starts.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from odevideo.errors import ConfigError


def check_choices(obj: Any, section: str) -> None:
    """Raise ``ConfigError`` unless every ``Literal[...]`` field of ``obj`` holds one of its choices."""
    for name, hint in get_type_hints(type(obj)).items():
        if get_origin(hint) is Literal and getattr(obj, name) not in get_args(hint):
            raise ConfigError(f"{section}.{name}={getattr(obj, name)!r} is not one of {list(get_args(hint))}")


def check_positive(obj: Any, section: str, *names: str) -> None:
    """Raise ``ConfigError`` unless each named field is > 0."""
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{section}.{name} must be > 0, got {getattr(obj, name)!r}")


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a YAML or command-line value to a field's annotated type (YAML reads ``1e-4`` as a string)."""
    args = get_args(hint)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "")):
            return None
        hint = next(a for a in args if a is not type(None))
        args = get_args(hint)
    if get_origin(hint) is Literal:  # the choices are checked in __post_init__
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
            if isinstance(value, list | dict):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a valid {getattr(hint, '__name__', hint)}") from None
    return value


def build(cls: type, values: dict[str, Any], section: str) -> Any:
    """An instance of the dataclass ``cls`` from a (partial) mapping; unknown keys are an error."""
    if not isinstance(values, dict):
        raise ConfigError(f"config section {section!r} must be a mapping, got {values!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    bad = set(values) - set(known)
    if bad:
        raise ConfigError(f"unknown config key(s) {sorted(f'{section}.{k}' for k in bad)}; known in {section}: "
                          f"{known}")
    hints = get_type_hints(cls)
    return cls(**{k: coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()})


def field_docs(cls: type) -> dict[str, str]:
    """The documentation of each field, read from the ``Attributes:`` sections of the docstrings of ``cls`` and
    of the classes it inherits from (a subclass's entry wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.cleandoc(klass.__dict__.get("__doc__") or "")
        if "Attributes:" not in doc:
            continue
        current: list[str] = []
        for line in doc.split("Attributes:", 1)[1].splitlines():
            match = re.match(r"^ {4}([a-z_][a-z_0-9]*(?:, *[a-z_][a-z_0-9]*)*):\s*(.*)$", line)
            if match:
                current = [n.strip() for n in match.group(1).split(",")]
                for name in current:
                    docs[name] = match.group(2).strip()
            elif line.startswith(" " * 8) and current:
                for name in current:
                    docs[name] += " " + line.strip()
            elif line.strip():
                break  # the next section of the docstring
    return docs


def user_cache() -> Path:
    """odevideo's cache folder (decoded clips, the baselines' scores): ``$XDG_CACHE_HOME/odevideo``, by default
    ``~/.cache/odevideo``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "odevideo"
