"""The precomputed backend: outputs from a CSV or JSONL file, looked up by item id, item text or
rendered prompt; every malformed file is a clear error; end to end against a tiny model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rlhf_eval.answering import answer
from rlhf_eval.errors import ModelLoadError, SuiteError
from rlhf_eval.models.precomputed import ItemKeys, PrecomputedBackend
from rlhf_eval.planner import build_tasks, prompt_rows
from rlhf_eval.records import GenerationRequest, LoglikelihoodRequest
from rlhf_eval.runner import run_suite
from rlhf_eval.store import ResponseCache
from rlhf_eval.suite import load_suite
from tests.conftest import MC_ROWS, write_suite
from tests.tasks.helpers import FIXTURES


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def ask(backend, prompt: str, task="qa", doc_id="d1", variant="", text="", n=1, stop=()):
    """A request with an opaque key, bound to its item as the planner binds it."""
    key = f"{task}/{doc_id}/{variant}/{text}"
    backend.bind({key: ItemKeys(task, "", doc_id, variant=variant, text=text)})
    return GenerationRequest(prompt, stop=stop, n=n, key=key)


ROWS = [
    {"task": "qa", "id": "d1", "output": "by id"},
    {"task": "qa", "id": "d1", "variant": "respectful", "output": "by id, respectful"},
    {"prompt": "What is two plus two?", "output": "by text"},
    {"prompt": "Q: Why is the sky blue?\nA:", "output": "by prompt", "toxicity": 0.25},
]


@pytest.mark.parametrize("write", [write_jsonl, write_csv], ids=["jsonl", "csv"])
def test_lookup_by_id_text_and_rendered_prompt(tmp_path, write):
    path = write(tmp_path / f"out.{'jsonl' if write is write_jsonl else 'csv'}", ROWS)
    backend = PrecomputedBackend("m", path, "m")
    generations = backend.generate(
        [
            ask(backend, "Instruction.\n\nQ: d1?\nA:", doc_id="d1"),
            ask(backend, "Be respectful.\n\nQ: d1?\nA:", doc_id="d1", variant="respectful"),
            ask(backend, "Q: What is two plus two?\nA:", doc_id="d2", text="What is two plus two?"),
            ask(backend, "Q: Why is the sky blue?\nA:", doc_id="d3", text="Why is the sky blue?"),
            GenerationRequest("Q: Why is the sky blue?\nA:"),  # no item: the prompt alone
        ]
    )
    assert [g.texts for g in generations] == [
        ("by id",),
        ("by id, respectful",),
        ("by text",),
        ("by prompt",),
        ("by prompt",),
    ]
    # Scores come through for the rows that have them; the token count is unknown (-1).
    assert generations[3].scores == ({"toxicity": 0.25},)
    assert generations[0].scores is None and generations[0].n_tokens == (-1,)


def test_variant_and_task_must_agree(tmp_path):
    path = write_jsonl(tmp_path / "out.jsonl", ROWS)
    backend = PrecomputedBackend("m", path, "m")
    with pytest.raises(ModelLoadError) as error:
        backend.generate(
            [
                ask(backend, "p", doc_id="d1", variant="toxic"),  # no row of that variant
                ask(backend, "p", task="other", doc_id="d1"),  # the rows of d1 are task qa's
                ask(backend, "p", doc_id="d1"),
            ]
        )
    message = str(error.value)
    assert f"{path}: no output for 2 of 3 generation requests" in message
    assert "task=qa id=d1 variant='toxic'" in message and "task=other id=d1" in message
    assert "Fix:" in message


def test_a_row_for_another_prompt_does_not_answer_by_id(tmp_path):
    """A zero-shot output keyed by id and prompt never stands in for the one-shot prompt."""
    rows = [
        {"task": "qa", "id": "d1", "prompt": "Q: a?\nA:", "output": "zero-shot"},
        {"task": "qa", "id": "d1", "prompt": "Q: b? A: b\n\nQ: a?\nA:", "output": "one-shot"},
    ]
    backend = PrecomputedBackend("m", write_jsonl(tmp_path / "out.jsonl", rows), "m")
    zero, one = backend.generate(
        [
            ask(backend, "Q: a?\nA:", text="Q: a?\nA:"),
            ask(backend, "Q: b? A: b\n\nQ: a?\nA:", text="Q: a?\nA:"),
        ]
    )
    assert (zero.texts, one.texts) == (("zero-shot",), ("one-shot",))
    with pytest.raises(ModelLoadError, match="no output for 1 of 1"):
        backend.generate([ask(backend, "Q: c? A: c\n\nQ: a?\nA:", text="Q: a? (other rendering)")])


def test_k_samples_in_sample_order(tmp_path):
    rows = [
        {"id": "d1", "sample": 2, "output": "third", "true": 1, "info": 0},
        {"id": "d1", "sample": 0, "output": "first", "true": 0, "info": 1},
        {"id": "d1", "sample": 1, "output": "second", "true": True, "info": False},
    ]
    backend = PrecomputedBackend("m", write_jsonl(tmp_path / "out.jsonl", rows), "m")
    two, one = backend.generate([ask(backend, "p", n=2), ask(backend, "p")])
    assert two.texts == ("first", "second") and one.texts == ("first",)
    assert two.scores == ({"true": 0.0, "info": 1.0}, {"true": 1.0, "info": 0.0})
    with pytest.raises(ModelLoadError, match=r"has 3 output\(s\), the request samples 4"):
        backend.generate([ask(backend, "p", n=4)])


def test_csv_values_stop_strings_and_token_counts(tmp_path):
    rows = [
        {"prompt": 'Say "hi",\nthen stop:', "output": "hi\nmore", "n_tokens": "3", "true": "1"},
        {"prompt": "Count:", "output": "1, 2, 3", "n_tokens": "5", "true": ""},
    ]
    backend = PrecomputedBackend("m", write_csv(tmp_path / "out.csv", rows), "m")
    cut, whole = backend.generate(
        [GenerationRequest('Say "hi",\nthen stop:', stop=("\n",)), GenerationRequest("Count:")]
    )
    # Cut at the stop string like every backend; the file's count is for the uncut text.
    assert (cut.texts, cut.n_tokens, cut.scores) == (("hi",), (-1,), ({"true": 1.0},))
    assert (whole.texts, whole.n_tokens, whole.scores) == (("1, 2, 3",), (5,), None)


def test_model_column_selects_rows(tmp_path):
    rows = [
        {"model": "a", "id": "d1", "output": "from a"},
        {"model": "b", "id": "d1", "output": "from b"},
    ]
    path = write_jsonl(tmp_path / "out.jsonl", rows)
    backend = PrecomputedBackend("x", path, "b")
    assert backend.generate([ask(backend, "p")])[0].texts == ("from b",)
    with pytest.raises(ModelLoadError, match="no rows of model 'c'; the file holds a, b"):
        PrecomputedBackend("c", path, "c")
    write_jsonl(path, rows + [{"id": "d2", "output": "whose?"}])
    with pytest.raises(ModelLoadError, match=r"out.jsonl:3: field `model` is empty"):
        PrecomputedBackend("a", path, "a")


def test_identity_names_the_file_hash_and_nothing_is_cached(tmp_path):
    path = write_jsonl(tmp_path / "out.jsonl", ROWS)
    first = PrecomputedBackend("m", path, "m")
    assert first.identity.startswith("precomputed:sha256-") and first.identity.endswith(":m")
    write_jsonl(path, ROWS[:1])
    assert PrecomputedBackend("m", path, "m").identity != first.identity
    cache = ResponseCache(tmp_path / "cache.sqlite")
    count: dict[str, int] = {}
    assert answer([ask(first, "p")], first, cache, count)[0].texts == ("by id",)
    assert count == {"computed": 1, "cached": 0}
    assert cache._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 0


def test_loglikelihood_is_refused(tmp_path):
    backend = PrecomputedBackend("m", write_jsonl(tmp_path / "out.jsonl", ROWS), "m")
    with pytest.raises(SuiteError, match="cannot answer .* log-likelihoods.*Fix:"):
        backend.loglikelihood([LoglikelihoodRequest("Q:", " A")])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "d1", "output": "ok"}\n{"id": "d2"}\n', r"out.jsonl:2: field `output` is missing"),
        ('{"id": "d1", "output": 7}\n', r"out.jsonl:1: field `output` is a int"),
        (
            '{"id": "d1", "output": "ok"}\n\n{"id": "d2", "output": \n',
            r"out.jsonl:3: not valid JSON",
        ),
        ("[1, 2]\n", r"out.jsonl:1: expected a JSON object"),
        ('{"output": "ok"}\n', r"out.jsonl:1: the row has neither `id` nor `prompt`"),
        (
            '{"id": "d1", "output": "ok", "toxicity": "high"}\n',
            r"out.jsonl:1: field `toxicity` is 'high', not a number",
        ),
        ('{"id": "d1", "output": "ok", "info": NaN}\n', r"out.jsonl:1: field `info` is nan"),
        ('{"id": "d1", "output": "ok", "sample": -1}\n', r"out.jsonl:1: field `sample` must be"),
        (
            '{"id": "d1", "output": "ok"}\n{"id": "d1", "output": "ok"}\n'
            '{"id": "d1", "output": "other"}\n',
            r"out.jsonl: lines 1 and 3 give different outputs for the same item",
        ),
        ("", r"out.jsonl: holds no rows"),
    ],
)
def test_malformed_jsonl_names_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "out.jsonl"
    path.write_text(content)
    with pytest.raises(ModelLoadError, match=message):
        PrecomputedBackend("m", path, "m")


def test_malformed_csv_names_the_line(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text('id,output,toxicity\nd1,"two\nlines",0.5\nd2,ok,0.1,extra\n')
    with pytest.raises(ModelLoadError, match=r"out.csv:4: more fields than the header"):
        PrecomputedBackend("m", path, "m")
    path.write_text("id,output,toxicity\nd1,ok,0.5\nd2,ok,lots\n")
    with pytest.raises(ModelLoadError, match=r"out.csv:3: field `toxicity` is 'lots'"):
        PrecomputedBackend("m", path, "m")
    path.write_text("id,toxicity\nd1,0.5\n")
    with pytest.raises(ModelLoadError, match=r"out.csv:2: field `output` is missing"):
        PrecomputedBackend("m", path, "m")


def test_two_rows_answering_one_request_are_ambiguous(tmp_path):
    rows = [
        {"task": "qa", "id": "d1", "output": "one"},
        {"task": "qa", "id": "d1", "variant": "", "prompt": "Q: a?\nA:", "output": "two"},
        {"task": "qa", "id": "d1", "prompt": "Q: a? (rendered)", "output": "three"},
    ]
    backend = PrecomputedBackend("m", write_jsonl(tmp_path / "out.jsonl", rows), "m")
    # The exact prompt wins over the id...
    assert backend.generate([ask(backend, "Q: a? (rendered)")])[0].texts == ("three",)
    # ...but by id alone, rows 1 and 2 both fit a request whose text is row 2's prompt.
    with pytest.raises(ModelLoadError, match=r"lines 1, 2 all answer task=qa id=d1"):
        backend.generate([ask(backend, "other", text="Q: a?\nA:")])


SUITE = """\
name: precomputed
output_dir: runs
cache_dir: cache
stats:
  bootstrap_iterations: 200
models:
  - name: tiny
    path: {tiny}
    role: baseline
    batch_size: 8
  - name: elsewhere
    backend: precomputed
    file: outputs.jsonl
    model: cluster-model
tasks:
  - name: tldr
    data: {fixtures}/tldr.jsonl
    max_new_tokens: 8
  - name: drop
    data: {fixtures}/drop.jsonl
    max_new_tokens: 6
"""


def test_end_to_end_compared_with_a_tiny_model(tmp_path, tiny_model_dir):
    suite = write_suite(tmp_path, SUITE.format(tiny=tiny_model_dir, fixtures=FIXTURES))
    (tmp_path / "outputs.jsonl").touch()  # the suite must name an existing file to load
    loaded = load_suite(suite)
    tasks = build_tasks(loaded)
    documents = {task_id: task.documents() for task_id, task in tasks.items()}
    # TL;DR rows as prompt_rows() writes them (keyed by prompt too), answered with the reference
    # and a second line the newline stop cuts; DROP rows keyed by task and id alone.
    rows = []
    for row in prompt_rows(tasks, documents):
        doc = next(d for d in documents[row["task"]] if d.id == row["id"])
        if row["task"] == "tldr":
            rows.append({**row, "output": f" {doc.data['reference']}\nmore", "toxicity": 0.5})
        else:
            rows.append({"task": "drop", "id": row["id"], "output": " 21"})
    rows = [{"model": "cluster-model", **r} for r in rows]
    write_jsonl(tmp_path / "outputs.jsonl", rows)

    run = run_suite(loaded, show_progress=False)
    results = run.results()
    point = {(m.model, m.metric): m.estimate.point for m in results.metrics}
    assert point[("elsewhere", "rouge_l")] == pytest.approx(1.0)
    assert point[("elsewhere", "drop_em")] == pytest.approx(1 / 6)  # "21" is right once of 6
    assert all(m.n_failed == 0 for m in results.metrics)
    compared = {(c.candidate, c.baseline, c.task, c.metric) for c in results.comparisons}
    assert ("elsewhere", "tiny", "tldr", "rouge_l") in compared
    assert ("elsewhere", "tiny", "drop", "drop_f1") in compared
    predictions = [s["prediction"] for s in run.read_samples("elsewhere", "tldr")]
    assert predictions == [d.data["reference"] for d in documents["tldr"]]
    models = {m.name: m for m in run.manifest().models}
    assert models["elsewhere"].identity.startswith("precomputed:sha256-")
    assert models["elsewhere"].source == "outputs.jsonl cluster-model"


def test_gaps_and_loglikelihood_tasks_fail_before_any_model_loads(tmp_path, tiny_model_dir):
    body = SUITE.format(tiny=tiny_model_dir, fixtures=FIXTURES)
    suite = write_suite(tmp_path, body)
    write_jsonl(tmp_path / "outputs.jsonl", [{"prompt": "unrelated", "output": "x"}])
    with pytest.raises(ModelLoadError, match=r"no output for 3 of 3 generation requests of task"):
        run_suite(load_suite(suite), show_progress=False)
    assert not (tmp_path / "runs").exists()

    (tmp_path / "mc.json").write_text(json.dumps(MC_ROWS))
    body = body[: body.index("tasks:")] + "tasks:\n  - name: truthfulqa_mc\n    data: mc.json\n"
    suite = write_suite(tmp_path, body)
    with pytest.raises(SuiteError, match="cannot answer task 'truthfulqa_mc': it asks for log"):
        run_suite(load_suite(suite), show_progress=False)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("backend: precomputed", r"`backend: precomputed` needs `file`"),
        ("backend: precomputed\n    file: out.txt", r"is neither .jsonl nor .csv"),
        (
            "backend: precomputed\n    file: out.jsonl\n    dtype: bfloat16\n    path: x",
            r"does not use path, dtype",
        ),
        (
            "path: x\n    file: out.jsonl",
            r"suite.yaml:4:5: field `models\[0\].file`: only `backend: precomputed` uses file",
        ),
        (
            "backend: precomputed\n    file: missing.jsonl",
            r"suite.yaml:4:5: field `models\[0\].file`",
        ),
    ],
)
def test_suite_entry_validation(tmp_path, entry, message):
    write_jsonl(tmp_path / "out.jsonl", ROWS)
    suite = write_suite(
        tmp_path,
        f"models:\n  - name: m\n    {entry}\ntasks:\n  - name: tldr\n    data: t.jsonl\n",
    )
    with pytest.raises(SuiteError, match=message):
        load_suite(suite)


def test_prompts_command_writes_every_generation_request(tmp_path, tiny_model_dir, capsys):
    from rlhf_eval.cli import main

    suite = write_suite(tmp_path, SUITE.format(tiny=tiny_model_dir, fixtures=FIXTURES))
    (tmp_path / "outputs.jsonl").touch()
    loaded = load_suite(suite)
    tasks = build_tasks(loaded)
    expected = prompt_rows(tasks, {t: task.documents() for t, task in tasks.items()})
    out = tmp_path / "todo" / "prompts.jsonl"
    assert main(["prompts", str(suite), str(out)]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == expected and len(written) > 0
    assert {"task", "id", "variant", "prompt", "max_new_tokens"} <= set(written[0])
    assert f"{len(expected)} prompts written" in capsys.readouterr().out


@pytest.mark.parametrize("with_prompt", [False, True])
def test_the_same_prompt_under_three_items_keeps_each_items_answer(tmp_path, with_prompt):
    """Issue 14.2: requests were merged by cache key, which drops the item, so three items with
    one prompt all got the first item's output."""
    prompt = {"prompt": "Q: the same prompt\nA:"} if with_prompt else {}
    rows = [{"task": "qa", "id": f"d{i}", **prompt, "output": f"answer {i}"} for i in range(3)]
    backend = PrecomputedBackend("m", write_jsonl(tmp_path / "out.jsonl", rows), "m")
    requests = [ask(backend, "Q: the same prompt\nA:", doc_id=f"d{i}") for i in range(3)]
    count: dict[str, int] = {}
    generations = answer(requests, backend, ResponseCache(None), count)
    assert [g.texts for g in generations] == [("answer 0",), ("answer 1",), ("answer 2",)]
    assert count["computed"] == 3


TWO_ENTRIES = """\
output_dir: runs
cache_dir: cache
models:
  - name: elsewhere
    backend: precomputed
    file: outputs.jsonl
tasks:
  - name: squad_v2
    id: squad_0shot
    data: {fixtures}/squad.jsonl
  - name: squad_v2
    id: squad_1shot
    data: {fixtures}/squad.jsonl
    num_fewshot: 1
    {selection}
"""


def test_outputs_keyed_by_entry_and_id_and_a_subset_selected_by_id(tmp_path, capsys):
    """Issue 14.17: outputs keyed by item id for two entries of one task (zero- and one-shot),
    without our prompts, and for a subset of the items, selected by id."""
    from rlhf_eval.cli import main

    body = TWO_ENTRIES.format(fixtures=FIXTURES, selection="")
    write_jsonl(tmp_path / "outputs.jsonl", [{"id": "x", "output": "y"}])
    suite = write_suite(tmp_path, body)
    assert main(["prompts", str(suite), str(tmp_path / "todo.jsonl")]) == 0
    todo = [json.loads(line) for line in (tmp_path / "todo.jsonl").read_text().splitlines()]
    assert {r["entry"] for r in todo} == {"squad_0shot", "squad_1shot"}
    ids = [r["id"] for r in todo if r["entry"] == "squad_1shot"]
    # Their own file: keyed by entry and id, no prompt; the one-shot entry covers two items.
    rows = [{"entry": "squad_0shot", "id": r["id"], "output": "zero"} for r in todo[:5]]
    rows += [{"entry": "squad_1shot", "id": i, "output": "one"} for i in ids[:2]]
    write_jsonl(tmp_path / "outputs.jsonl", rows)
    selection = "items: [" + ", ".join(json.dumps(i) for i in ids[:2]) + "]"
    suite = write_suite(tmp_path, TWO_ENTRIES.format(fixtures=FIXTURES, selection=selection))
    run = run_suite(load_suite(suite), show_progress=False)
    zero = run.read_samples("elsewhere", "squad_0shot")
    one = run.read_samples("elsewhere", "squad_1shot")
    assert [s["prediction"] for s in zero] == ["zero"] * 5
    assert [s["doc_id"] for s in one] == ids[:2] and {s["prediction"] for s in one} == {"one"}
    # An id the data does not hold: exit 2, naming the entry and the closest id.
    bad = "items: [" + json.dumps(ids[0][:-1] + "Z") + "]"
    suite = write_suite(tmp_path, TWO_ENTRIES.format(fixtures=FIXTURES, selection=bad))
    assert main(["run", str(suite), "--no-progress", "--run-name", "bad"]) == 2
    err = capsys.readouterr().err
    assert "task entry 'squad_1shot': `items` names 1 id(s)" in err and ids[0] in err


def test_items_and_limit_together_are_refused(tmp_path):
    body = TWO_ENTRIES.format(fixtures=FIXTURES, selection="items: [a]\n    limit: 2")
    write_jsonl(tmp_path / "outputs.jsonl", [{"id": "x", "output": "y"}])
    with pytest.raises(SuiteError, match="not both"):
        load_suite(write_suite(tmp_path, body))
