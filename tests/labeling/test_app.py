"""The labeling app without a browser: the CLI serving on a random token, server-side checks,
escaping, the blind order, and bad input (missing run, no generations, corrupt labels file)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rlhf_eval.cli import main
from rlhf_eval.errors import RunError
from rlhf_eval.labeling.app import create_app, make_label_server
from rlhf_eval.labeling.items import display_order, load_labeling_set
from rlhf_eval.labeling.store import LABELS_FILE, LabelStore
from rlhf_eval.manifest import Manifest, ModelRecord
from rlhf_eval.records import Sample
from rlhf_eval.store import RunDir
from tests.labeling.conftest import MODELS, TOKEN, write_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(label_run):
    labeling = load_labeling_set(label_run)
    app = create_app(labeling, LabelStore.for_run(label_run), TOKEN)
    return app.test_client(), labeling


def test_the_cli_prints_a_url_with_a_fresh_token_and_serves_it(label_run):
    with socket.socket() as s:  # a free port for the app
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-u", "-m", "rlhf_eval", "label", str(label_run)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:(\d+)/\?token=([\w-]+))&labeler=", line)
        assert match, line + process.stderr.read() if process.poll() is not None else line
        url, shown_port, token = match.groups()
        assert int(shown_port) == port and len(token) >= 32
        with urllib.request.urlopen(f"{url}&labeler=carol", timeout=10) as response:
            assert response.status == 200 and "Prompt 1 of 5" in response.read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/?token=x{token}", timeout=10)
        assert refused.value.code == 403
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()
        process.stderr.close()


def test_server_side_check_keeps_what_was_entered_and_saves_nothing(client, label_run):
    app, labeling = client
    item = labeling.items[0]
    url = f"/item/{item.doc_id}?labeler=alice&token={TOKEN}"
    form = {"likert_0": "6", "flags_0": ["hallucination"], "rank_0": "1", "likert_1": "3"}
    response = app.post(url, data=form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Not saved" in page and "output B: give a rank" in page and "output C" in page
    assert re.search(r'name="likert_0" value="6"\s+checked', page)
    assert re.search(r'name="flags_0" value="hallucination"\s+checked', page)
    assert LabelStore.for_run(label_run).labeled_docs("instructions", "alice") == set()
    # Out-of-range values are refused too.
    bad = {f"likert_{i}": "8" for i in range(3)} | {f"rank_{i}": "4" for i in range(3)}
    assert app.post(url, data=bad).status_code == 400
    good = {f"likert_{i}": "4" for i in range(3)} | {f"rank_{i}": "1" for i in range(3)}
    response = app.post(url, data=good)
    assert response.status_code == 302 and labeling.items[1].doc_id in response.location
    labels = LabelStore.for_run(label_run).labels("instructions", "alice")
    assert len(labels) == 3 and {x.rank for x in labels} == {1}  # an all-tied ranking is kept


def test_bad_labeler_and_unknown_prompt(client):
    app, _ = client
    assert app.get(f"/?labeler=%3Cscript%3E&token={TOKEN}").status_code == 400
    assert app.get(f"/item/p0?token={TOKEN}").status_code == 400  # no labeler
    assert app.get(f"/item/nope?labeler=alice&token={TOKEN}").status_code == 404


def test_outputs_are_escaped_and_shown_blind(tmp_path):
    path = write_run(tmp_path / "run", n=2)
    run = RunDir(path)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    run.append_samples(
        MODELS[1], "instructions", [Sample("p9", "prompt <b>9</b>", None, hostile, {})]
    )
    run.append_samples(MODELS[0], "instructions", [Sample("p9", "prompt <b>9</b>", None, "ok", {})])
    labeling = load_labeling_set(path)
    app = create_app(labeling, LabelStore.for_run(path), TOKEN).test_client()
    page = app.get(f"/item/p9?labeler=alice&token={TOKEN}").get_data(as_text=True)
    assert "&lt;script&gt;alert(" in page and "<img src=x" not in page
    assert "prompt &lt;b&gt;9&lt;/b&gt;" in page
    assert not any(model in page for model in MODELS)


def test_display_order_is_stable_per_labeler_and_varies(label_run):
    labeling = load_labeling_set(label_run)
    for item in labeling.items:
        assert display_order("alice", item) == display_order("alice", item)
        assert sorted(o.model for o in display_order("alice", item)) == sorted(MODELS)
    firsts = {display_order("alice", item)[0].model for item in labeling.items}
    assert len(firsts) > 1  # not always the same model in the first slot


def test_default_task_is_the_first_instructions_entry(tmp_path):
    path = write_run(
        tmp_path / "run",
        task_id="ifeval_chat",
        extra_tasks={"gsm8k": "gsm8k@1", "chat2": "instructions@1"},
    )
    assert load_labeling_set(path).task_id == "ifeval_chat"
    with pytest.raises(RunError, match=r"no task entry 'nope'.*ifeval_chat, gsm8k, chat2"):
        load_labeling_set(path, "nope")


def test_a_missing_run_directory(tmp_path, capsys):
    assert main(["label", str(tmp_path / "runs" / "gone")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "runs" / "gone") in err and "Traceback" not in err


def test_a_run_without_generation_samples(tmp_path, capsys):
    run = RunDir.start(
        tmp_path / "run",
        Manifest(
            fingerprint="x",
            suite_hash="x",
            task_versions={"truthfulqa_mc": "truthfulqa_mc@1"},
            models=[ModelRecord(name="sft", role="baseline"), ModelRecord(name="ppo")],
        ),
    )
    for model in ("sft", "ppo"):
        run.append_samples(
            model, "truthfulqa_mc", [Sample("q1", "Q?", 0, 1, {"truthfulqa_mc1": 1.0})]
        )
    for args in ([], ["--export", str(tmp_path / "out.jsonl")], ["--summary"]):
        assert main(["label", str(run.path), *args]) == 2
        err = capsys.readouterr().err
        assert f"{run.path} has no generation samples" in err and "Fix:" in err
    assert not (run.path / LABELS_FILE).exists() and not (tmp_path / "out.jsonl").exists()
    assert main(["label", str(run.path), "--task", "truthfulqa_mc"]) == 2
    assert "no generated text" in capsys.readouterr().err


def test_export_and_summary_before_any_label(label_run, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["label", str(label_run), "--export", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{label_run / LABELS_FILE} not found" in err and "rlhf-eval label" in err
    assert not out.exists() and not (label_run / LABELS_FILE).exists()


@pytest.mark.parametrize(
    "content", [b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_a_corrupt_labels_file_is_reported_and_left_untouched(label_run, tmp_path, capsys, content):
    corrupt = label_run / LABELS_FILE
    corrupt.write_bytes(content)
    for args in (["--export", str(tmp_path / "out.jsonl")], ["--summary"]):
        assert main(["label", str(label_run), *args]) == 2
        err = capsys.readouterr().err
        assert str(corrupt) in err and "corrupt" in err and "Fix:" in err and ".recover" in err
    with pytest.raises(RunError, match="corrupt"):
        make_label_server(label_run, port=0)
    assert corrupt.read_bytes() == content  # nothing lost
    assert sorted(p.name for p in label_run.iterdir()) == [
        "labels.sqlite",
        "manifest.json",
        "samples",
    ]


def test_a_foreign_sqlite_file_is_refused(label_run, capsys):
    import sqlite3

    db = sqlite3.connect(label_run / LABELS_FILE)
    db.execute("CREATE TABLE other (x)")
    db.commit()
    db.close()
    assert main(["label", str(label_run), "--summary"]) == 2
    assert "not an rlhf-eval labels file" in capsys.readouterr().err


def test_a_busy_port_is_a_clear_error(label_run, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["label", str(label_run), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_export_writes_kway_rows_and_leaves_out_all_tied(label_run, tmp_path, capsys):
    labeling = load_labeling_set(label_run)
    app = create_app(labeling, LabelStore.for_run(label_run), TOKEN).test_client()
    for item, ranks in zip(labeling.items, ([1, 2, 2], [1, 1, 1], [3, 2, 1]), strict=False):
        form = {f"likert_{i}": "4" for i in range(3)} | {
            f"rank_{i}": str(r) for i, r in enumerate(ranks)
        }
        assert (
            app.post(f"/item/{item.doc_id}?labeler=al&token={TOKEN}", data=form).status_code == 302
        )
    out = tmp_path / "kway.jsonl"
    assert main(["label", str(label_run), "--export", str(out)]) == 0
    assert "1 all-tied rankings left out" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["p0:al", "p2:al"]
    assert sorted(rows[0]["ranks"]) == [0, 1, 1] and sorted(rows[1]["ranks"]) == [0, 1, 2]
    from rlhf_common.instruction_data import read_rankings

    assert [r.ranks for r in read_rankings(out)] == [tuple(r["ranks"]) for r in rows]
