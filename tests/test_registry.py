"""Model aliases and load errors: each names the model and the fix."""

from __future__ import annotations

import pytest

from rlhf_common import model_aliases
from rlhf_eval.errors import ModelLoadError
from rlhf_eval.models.hf import HFBackend


def test_alias_needs_its_package(monkeypatch):
    monkeypatch.setitem(
        model_aliases.ALIASES,
        "ghost",
        model_aliases.GgufAlias(
            package="no_such_package_xyz", filename="x.gguf", install_hint="pip install ghost"
        ),
    )
    with pytest.raises(
        ModelLoadError, match="needs the PyPI package 'no_such_package_xyz'.*pip install ghost"
    ):
        model_aliases.resolve_alias("ghost")


def test_unknown_alias_lists_known_ones():
    with pytest.raises(ModelLoadError, match="smollm2-135m-instruct"):
        model_aliases.resolve_alias("gpt-5")


def test_non_alias_passes_through():
    assert model_aliases.resolve_pretrained("org/model") == "org/model"


def test_unreachable_hub_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelLoadError, match="model 'x': cannot load 'nobody/no-such-model'"):
        HFBackend("x", "nobody/no-such-model")


def test_folder_without_weights_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="cannot load"):
        HFBackend("x", str(tmp_path))


def test_cache_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RLHF_EVAL_HOME", str(tmp_path))
    assert model_aliases.cache_home() == tmp_path
