"""The labeling app driven in headless Chromium (issue 4): open, label three prompts with Likert
and flags, rank with a tie, reload and resume, revisit and edit, a second labeler, the token,
and the export training a reward model through `rlhf-train rm`."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

import pytest

from rlhf_eval.cli import main
from rlhf_eval.labeling.items import display_order, load_labeling_set
from rlhf_eval.labeling.store import LabelStore
from tests.labeling.conftest import BASELINE, MODELS

# What alice enters on the first three prompts, per displayed slot (A, B, C): Likert, flags, rank.
# Slots B and C of the first prompt share rank 2: the tie.
ENTRIES = [
    [(6, ("satisfies_constraint",), 1), (3, ("hallucination",), 2), (3, (), 2)],
    [(2, ("fails_to_follow", "expresses_opinion"), 3), (5, (), 1), (4, (), 2)],
    [(7, (), 1), (7, (), 1), (1, ("harmful_advice", "violent_content"), 3)],
]


def fill(page, entries) -> None:
    for i, (likert, flags, rank) in enumerate(entries):
        page.check(f'input[name="likert_{i}"][value="{likert}"]')
        for flag in flags:
            page.check(f'input[name="flags_{i}"][value="{flag}"]')
        page.select_option(f'select[name="rank_{i}"]', str(rank))


def shown_texts(page) -> list[str]:
    return page.locator("section.output pre.text").all_inner_texts()


def assert_blind(page) -> None:
    html = page.content()
    for model in MODELS:
        assert model not in html, f"the page shows the model name {model}"


def progress(page) -> str:
    return page.inner_text("#progress")


def test_label_reload_resume_revisit_and_export_trains_an_rm(
    label_server, page, tmp_path, tiny_model_dir
):
    url, run = label_server
    labeling = load_labeling_set(run)
    items = labeling.items

    # Open: the start page asks for a name.
    page.goto(url)
    page.fill("#labeler", "alice")
    page.click("button[type=submit]")
    assert page.url.split("?")[0].endswith(f"/item/{items[0].doc_id}")
    assert "0 / 5" in progress(page)

    # The order is random per prompt and stable across reloads.
    before = shown_texts(page)
    page.reload()
    assert shown_texts(page) == before
    order = [o.text for o in display_order("alice", items[0])]
    assert before == order

    # Nothing is saved until every output has a score and a rank (the check in the page).
    page.click("#save")
    assert page.is_visible("#client-error")
    assert "a score for A" in page.inner_text("#client-error")
    assert LabelStore.for_run(run).labeled_docs(labeling.task_id, "alice") == set()

    for number, entries in enumerate(ENTRIES):
        assert page.url.split("?")[0].endswith(f"/item/{items[number].doc_id}")
        assert_blind(page)
        fill(page, entries)
        if number == 0:
            assert page.inner_text("#ranking-preview") in ("A > B = C", "A > C = B")
        page.click("#save")
        page.wait_for_load_state()
    assert page.url.split("?")[0].endswith(f"/item/{items[3].doc_id}")
    assert "3 / 5" in progress(page)

    # What was stored: per model, what was entered in the slot that showed its output.
    store = LabelStore.for_run(run)
    saved = {(x.doc_id, x.model): x for x in store.labels(labeling.task_id, "alice")}
    assert len(saved) == 3 * len(MODELS)
    for item, entries in zip(items, ENTRIES, strict=False):
        for output, (likert, flags, rank) in zip(
            display_order("alice", item), entries, strict=True
        ):
            label = saved[(item.doc_id, output.model)]
            assert (label.likert, set(label.flags), label.rank) == (likert, set(flags), rank)
            assert label.output == output.text and label.prompt == item.prompt

    # Reload the start URL: the app resumes at the first unlabeled prompt.
    page.goto(f"{url}&labeler=alice")
    assert page.url.split("?")[0].endswith(f"/item/{items[3].doc_id}")
    assert "3 / 5" in progress(page)

    # Revisit prompt 1: the saved labels are shown and can be edited.
    page.click("nav.items a >> nth=0")
    assert page.url.split("?")[0].endswith(f"/item/{items[0].doc_id}")
    assert page.is_checked('input[name="likert_0"][value="6"]')
    assert page.is_checked('input[name="flags_1"][value="hallucination"]')
    assert page.input_value('select[name="rank_2"]') == "2"
    page.check('input[name="likert_0"][value="5"]')
    page.click("#save")
    page.wait_for_load_state()
    assert page.url.split("?")[0].endswith(f"/item/{items[3].doc_id}")  # the next unlabeled
    first = display_order("alice", items[0])[0].model
    assert {
        x.likert
        for x in store.labels(labeling.task_id, "alice")
        if (x.doc_id, x.model) == (items[0].doc_id, first)
    } == {5}
    assert len(store.labeled_docs(labeling.task_id, "alice")) == 3

    # A second labeler has their own progress and their own order.
    page.goto(f"{url}&labeler=bob")
    assert page.url.split("?")[0].endswith(f"/item/{items[0].doc_id}")
    assert "bob" in progress(page) and "0 / 5" in progress(page)
    assert any(
        [o.model for o in display_order("bob", i)] != [o.model for o in display_order("alice", i)]
        for i in items
    )
    assert shown_texts(page) == [o.text for o in display_order("bob", items[0])]
    fill(page, [(4, (), 2), (4, (), 1), (4, (), 3)])
    page.click("#save")
    page.wait_for_load_state()
    assert "1 / 5" in progress(page)
    page.goto(url)
    assert "alice: 3 / 5" in page.inner_text("body") and "bob: 1 / 5" in page.inner_text("body")

    # Export: one K-way ranking per (prompt, labeler), ranks 0 best with the tie kept.
    out = tmp_path / "rankings.jsonl"
    assert main(["label", str(run), "--export", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    by_id = {row["id"]: row for row in rows}
    first_prompt = by_id[f"{items[0].doc_id}:alice"]
    assert first_prompt["prompt"] == items[0].prompt
    shown = display_order("alice", items[0])
    expected = {shown[0].text: 0, shown[1].text: 1, shown[2].text: 1}  # A best, B = C
    assert dict(zip(first_prompt["completions"], first_prompt["ranks"], strict=True)) == expected

    # ... which `rlhf-train rm` trains a reward model on.
    from rlhf_train.cli import main as train_main
    from rlhf_train.tracking import read_metrics

    config = tmp_path / "rm.yaml"
    config.write_text(
        f"model: {tiny_model_dir}\n"
        f"data: {{path: {out}}}\n"
        "output_dir: rm\n"
        "val_fraction: 0.0\n"
        "progress_bar: false\n"
        "max_length: 64\n"
        "optim: {epochs: 1, batch_size: 2, micro_batch_size: 2, lr: 1e-3}\n"
    )
    assert train_main(["rm", str(config)]) == 0
    summary = json.loads((tmp_path / "rm" / "rm_summary.json").read_text())
    assert summary["steps"] == 2  # 4 rankings, 2 per step: every exported ranking was read
    metrics = read_metrics(tmp_path / "rm")
    assert metrics[0]["train_prompts"] == 4
    metrics = [m for m in metrics if "loss" in m]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(math.isfinite(m["loss"]) for m in metrics)
    assert (tmp_path / "rm" / "model.safetensors").is_file()


def test_requests_without_the_right_token_are_refused(label_server, page):
    url, _ = label_server
    base = url.split("?")[0]
    for target in (base, f"{base}?token=wrong", f"{base}item/p0?labeler=alice"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(target, timeout=10)
        assert refused.value.code == 403
    post = urllib.request.Request(f"{base}item/p0?labeler=alice", data=b"likert_0=7", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=10)
    assert refused.value.code == 403
    assert page.goto(f"{base}?labeler=alice").status == 403
    assert page.goto(f"{url}&labeler=alice").status == 200
    assert BASELINE not in page.content()
