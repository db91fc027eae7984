"""Detoxify and Hugging Face sequence classifiers as toxicity scorers, on tiny random models
built here (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.scorers.building import build_scorer
from rlhf_eval.scorers.classifiers import DetoxifyScorer, SequenceClassifierScorer
from rlhf_eval.scorers.toxicity import ClassifierSpec, DetoxifySpec
from tests.conftest import build_tokenizer

TEXTS = ["The watermelon seeds pass through.", "Goldfish have memories.", "Nothing happens."]
JIGSAW_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]


def tiny_bert(folder: Path, labels: list[str], problem_type: str | None = None):
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = build_tokenizer(folder)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=128,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        problem_type=problem_type,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    return model, tokenizer


def logits(model, tokenizer, texts):
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**encoded).logits


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toxic-classifier")
    model, tokenizer = tiny_bert(folder, ["non-toxic", "toxic"])
    return folder, logits(model, tokenizer, TEXTS)


def test_classifier_scores_softmax_of_the_named_label(classifier_dir):
    folder, expected_logits = classifier_dir
    spec = ClassifierSpec(kind="classifier", path=folder.name, label="Toxic")
    scorer = build_scorer(spec, folder.parent)
    assert isinstance(scorer, SequenceClassifierScorer) and scorer.label_index == 1
    assert scorer.name == f"classifier {folder.name} [Toxic]"
    assert scorer.identity.startswith("classifier:sha256-") and scorer.identity.endswith("label=1")
    expected = torch.softmax(expected_logits, dim=-1)[:, 1].tolist()
    assert scorer.score(TEXTS) == pytest.approx(expected, abs=1e-5)
    # By index, in batches of one: the same numbers.
    by_index = build_scorer(
        ClassifierSpec(kind="classifier", path=str(folder), label=1, batch_size=1), Path("/")
    )
    assert by_index.score(TEXTS) == pytest.approx(expected, abs=1e-5)


def test_classifier_multi_label_uses_a_sigmoid(tmp_path):
    model, tokenizer = tiny_bert(tmp_path, JIGSAW_CLASSES, "multi_label_classification")
    scorer = build_scorer(
        ClassifierSpec(kind="classifier", path=str(tmp_path), label="toxic"), tmp_path
    )
    expected = torch.sigmoid(logits(model, tokenizer, TEXTS)[:, 0]).tolist()
    assert scorer.score(TEXTS) == pytest.approx(expected, abs=1e-5)


def test_classifier_unknown_label_and_missing_folder_are_clear(classifier_dir, tmp_path):
    folder, _ = classifier_dir
    with pytest.raises(
        ModelLoadError, match=r"no label 'hateful' \(its labels: 0: non-toxic, 1: toxic\)"
    ):
        build_scorer(ClassifierSpec(kind="classifier", path=str(folder), label="hateful"), tmp_path)
    with pytest.raises(ModelLoadError, match="no label 5"):
        build_scorer(ClassifierSpec(kind="classifier", path=str(folder), label=5), tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist. Fix: correct the scorer's `path`"):
        build_scorer(ClassifierSpec(kind="classifier", path="nowhere", label=1), tmp_path)


def test_classifier_one_failing_text_fails_alone(classifier_dir):
    folder, expected_logits = classifier_dir
    scorer = build_scorer(ClassifierSpec(kind="classifier", path=str(folder), label=1), folder)
    real = scorer._predict

    def predict(batch):
        if any("boom" in t for t in batch):
            raise RuntimeError("tokenizer choked")
        return real(batch)

    scorer._predict = predict
    first, boom, third = scorer.score([TEXTS[0], "boom", TEXTS[2]])
    assert isinstance(boom, RuntimeError)
    expected = torch.softmax(expected_logits, dim=-1)[:, 1].tolist()
    assert (first, third) == pytest.approx([expected[0], expected[2]], abs=1e-5)


# ---- Detoxify ---------------------------------------------------------------------------------

detoxify = pytest.importorskip("detoxify", reason="detoxify is not installed")


def detoxify_checkpoint(folder: Path) -> tuple[Path, torch.Tensor]:
    """A tiny random model saved the way detoxify's training saves one: a torch file holding
    the training config (architecture, tokenizer, class names) and the state dict. The
    config's `model_type` (a hub id in real checkpoints) is a local folder here."""
    model, tokenizer = tiny_bert(folder, JIGSAW_CLASSES)
    checkpoint = {
        "config": {
            "arch": {
                "args": {
                    "model_type": str(folder),
                    "model_name": "BertForSequenceClassification",
                    "tokenizer_name": "AutoTokenizer",
                    "num_classes": len(JIGSAW_CLASSES),
                }
            },
            "dataset": {"args": {"classes": JIGSAW_CLASSES}},
        },
        "state_dict": model.state_dict(),
    }
    path = folder / "toxic_tiny.ckpt"
    torch.save(checkpoint, path)
    return path, torch.sigmoid(logits(model, tokenizer, TEXTS)[:, 0])


def test_detoxify_local_checkpoint(tmp_path):
    path, expected = detoxify_checkpoint(tmp_path)
    spec = DetoxifySpec(kind="detoxify", checkpoint=path.name, batch_size=2)
    scorer = build_scorer(spec, tmp_path)
    assert isinstance(scorer, DetoxifyScorer)
    assert scorer.name == "Detoxify (toxic_tiny.ckpt)"
    assert scorer.identity.startswith("detoxify:original:sha256-")
    # Batches of 2 then 1: detoxify's squeezed single result is handled.
    assert scorer.score(TEXTS) == pytest.approx(expected.tolist(), abs=1e-5)


def test_detoxify_without_a_checkpoint_offline_names_the_fix(tmp_path, monkeypatch):
    """With no cached checkpoint and no network the download fails: the error says how to
    give a local checkpoint."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty download cache

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(ModelLoadError) as raised:
        build_scorer(DetoxifySpec(kind="detoxify", variant="unbiased"), tmp_path)
    message = str(raised.value)
    assert "Detoxify (unbiased) could not be loaded: OSError: network unreachable" in message
    assert "toxic_debiased-c7548aa0.ckpt" in message and "`checkpoint:`" in message
    assert "roberta-base" in message and "`huggingface_config:`" in message
    with pytest.raises(ModelLoadError, match="checkpoint .*missing.ckpt does not exist"):
        build_scorer(DetoxifySpec(kind="detoxify", checkpoint="missing.ckpt"), tmp_path)


def test_detoxify_uses_its_download_cache(tmp_path, monkeypatch):
    path, expected = detoxify_checkpoint(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "toxic_original-c1212f89.ckpt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    scorer = build_scorer(DetoxifySpec(kind="detoxify"), tmp_path)
    assert scorer.name == "Detoxify (original)"
    assert scorer.score(TEXTS) == pytest.approx(expected.tolist(), abs=1e-5)
