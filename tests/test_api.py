"""The public API: exported names are what the docs say, whatever was imported before; the README's Python
snippets run."""

import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import odevideo
from odevideo.config import load_config
from odevideo.inference import save_checkpoint

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_exported_name_is_its_documented_object_even_after_every_submodule_is_imported():
    for info in pkgutil.walk_packages(odevideo.__path__, "odevideo."):
        importlib.import_module(info.name)
    submodules = {name.rsplit(".", 1)[-1] for name in (i.name for i in pkgutil.walk_packages(odevideo.__path__))}
    for name in odevideo.__all__:
        obj = getattr(odevideo, name)
        assert not isinstance(obj, types.ModuleType), name
        assert name not in submodules, f"odevideo.{name} is also a submodule's name"
        assert obj is getattr(importlib.import_module(odevideo._EXPORTS[name]), name)
    from odevideo import evaluate, train  # the functions, though odevideo.evaluation and .training are modules

    assert evaluate is importlib.import_module("odevideo.evaluation").evaluate
    assert train is importlib.import_module("odevideo.training.run").train


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_snippets():
    assert len(python_snippets()) >= 2


def test_the_readme_python_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config("demo", ["train.precision=32-true"])
    save_checkpoint(tmp_path / "odevideo-demo/run/checkpoints/best.safetensors", config.build_model(), config, step=0)
    namespace: dict[str, object] = {}
    for snippet in python_snippets():
        snippet = snippet.replace("range(256)", "range(16)")  # the same calls, on fewer sequences
        try:
            exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"README snippet failed: {type(exc).__name__}: {exc}\n{snippet}")
