"""`rlhf-train train-judge` and `rlhf-eval check-judge`: reading the judge data, the split by
question, the accuracy figures, and a fine-tuning run on the tiny model whose folder then serves
as a judge, scored by rlhf-eval in its own process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlhf_common.errors import DataError
from rlhf_common.judge_data import JudgeExample, read_judge_data
from rlhf_common.stats import wilson
from rlhf_eval.cli import main as eval_main
from rlhf_eval.judge_check import judge_accuracy
from rlhf_train.cli import main
from rlhf_train.train_judge import sample_rows, split_by_question


def _rows(n_questions: int, answers: int = 3, cue: str = "True:", label=None) -> list[dict]:
    rows = []
    for q in range(n_questions):
        for a in range(answers):
            yes = label if label is not None else (q + a) % 2 == 0
            rows.append(
                {
                    "prompt": f"Q: Is claim {q} true?\nA: Answer {a} to {q}.\n{cue}",
                    "completion": " yes" if yes else " no",
                }
            )
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_reading_checks_the_cue_and_the_completion(tmp_path):
    examples = read_judge_data(_write(tmp_path / "t.jsonl", _rows(2)), "truth")
    assert len(examples) == 6 and examples[0].question == "Is claim 0 true?"
    assert examples[0].label and not examples[1].label
    info = _write(tmp_path / "i.jsonl", _rows(2, cue="Helpful:"))
    with pytest.raises(DataError, match=r"i\.jsonl:1: field `prompt` must read .*--kind info"):
        read_judge_data(info, "truth")
    bad = _rows(1)
    bad[1]["completion"] = "yes"
    with pytest.raises(DataError, match=r"b\.jsonl:2: .*completion 'yes'"):
        read_judge_data(_write(tmp_path / "b.jsonl", bad), "truth")
    with pytest.raises(DataError, match="does not exist"):
        read_judge_data(tmp_path / "absent.jsonl", "truth")


def test_split_holds_out_whole_questions():
    examples = [
        JudgeExample(f"Q: q{q}\nA: a{a}\nTrue:", " yes", f"q{q}")
        for q in range(10)
        for a in range(3)
    ]
    train, held = split_by_question(examples, 0.2, seed=0)
    train_q, held_q = {e.question for e in train}, {e.question for e in held}
    assert len(held_q) == 2 and len(train_q) == 8 and not train_q & held_q
    assert len(held) == 6 and len(train) == 24
    assert split_by_question(examples, 0.2, seed=0) == (train, held)  # seeded
    assert {e.question for e in split_by_question(examples, 0.2, seed=1)[1]} != held_q
    # Tiny fractions still hold one question out, and at least one stays for training.
    assert len({e.question for e in split_by_question(examples, 0.01, 0)[1]}) == 1
    assert len({e.question for e in split_by_question(examples, 0.99, 0)[0]}) == 1
    with pytest.raises(DataError, match="at least two"):
        split_by_question(examples[:3], 0.2, 0)


def test_sample_rows_is_seeded_and_keeps_file_order():
    examples = [JudgeExample(f"Q: q{i}\nA: a\nTrue:", " no", f"q{i}") for i in range(50)]
    picked = sample_rows(examples, 10, seed=3)
    assert len(picked) == 10 and picked == sample_rows(examples, 10, seed=3)
    assert [examples.index(e) for e in picked] == sorted(examples.index(e) for e in picked)
    assert sample_rows(examples, None, 0) == examples == sample_rows(examples, 500, 0)


def test_accuracy_golden():
    # Verdicts (>= 0.5): yes, yes, no, no, yes against labels yes, no, no, no, yes: 4 of 5 right;
    # recall of yes = 2/2, of no = 2/3, balanced = 5/6; 2 of 5 labels are yes, so always
    # answering "no" would score 3/5.
    report = judge_accuracy([0.9, 0.6, 0.4, 0.1, 0.5], [True, False, False, False, True])
    assert report["accuracy"] == wilson(4, 5).to_dict()
    assert report["accuracy"]["point"] == pytest.approx(0.8)
    assert report["balanced_accuracy"] == pytest.approx(5 / 6)
    assert report["n"] == 5 and report["share_yes"] == pytest.approx(0.4)
    assert report["majority_baseline"] == pytest.approx(0.6)
    assert report["predicted_yes"] == pytest.approx(0.6)


@pytest.mark.slow
@pytest.mark.parametrize("label", [True, False])
def test_train_judge_end_to_end(tmp_path, tiny_model_dir, capsys, label):
    # Every label is " yes" (or every one " no"): a few steps at a high learning rate must teach
    # the tiny model that answer on questions it never saw, read as P(" yes") >= 0.5 (or < 0.5).
    data = _write(tmp_path / "finetune_truth.jsonl", _rows(10, answers=2, label=label))
    out = tmp_path / "judge"
    code = main(
        [
            "train-judge",
            "--kind=truth",
            f"--base={tiny_model_dir}",
            f"--data={data}",
            f"--out={out}",
            "--holdout=0.3",
            "--epochs=8",
            "--lr=0.05",
            "--batch-size=4",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert '"balanced_accuracy"' in printed and "tokens for this judge's tokenizer" in printed
    report = json.loads((out / "judge_eval.json").read_text())
    held = report["heldout"]
    assert held["questions"] == 3 and held["rows"] == held["n"] == 6
    assert report["train"] == {"rows": 14, "questions": 7}
    assert held["accuracy"]["point"] == 1.0 and held["predicted_yes"] == float(label)
    assert held["accuracy"]["method"] == "wilson" and held["majority_baseline"] == 1.0
    assert report["yes_tokens"] > 1  # the tiny BPE splits " yes"; reported, not hidden
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    trained = {json.loads(line)["prompt"] for line in (out / "judge_train.jsonl").open()}
    heldout = {json.loads(line)["prompt"] for line in (out / "judge_heldout.jsonl").open()}
    assert len(trained) == 14 and len(heldout) == 6 and not trained & heldout


def test_check_judge_scores_labelled_rows(tmp_path, tiny_model_dir, capsys):
    data = _write(tmp_path / "heldout.jsonl", _rows(3, answers=2))
    out = tmp_path / "figures" / "check.json"
    args = ["check-judge", f"--judge={tiny_model_dir}", f"--data={data}"]
    assert eval_main([*args, "--kind=truth", f"--out={out}", "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert report["evaluation"]["rows"] == report["evaluation"]["n"] == 6
    assert report["evaluation"]["questions"] == 3 and report["yes_tokens"] > 1
    assert '"balanced_accuracy"' in capsys.readouterr().out
    assert eval_main([*args, "--kind=info"]) == 2  # the rows are a truth judge's
    assert "--kind truth" in capsys.readouterr().err


def test_rlhf_eval_has_no_train_judge(capsys):
    with pytest.raises(SystemExit) as stopped:
        eval_main(["train-judge", "--help"])
    assert stopped.value.code == 2 and "invalid choice: 'train-judge'" in capsys.readouterr().err


def test_cli_errors_exit_2(tmp_path, tiny_model_dir, capsys):
    data = _write(tmp_path / "finetune_info.jsonl", _rows(3, cue="Helpful:"))
    args = ["train-judge", f"--base={tiny_model_dir}", f"--data={data}", f"--out={tmp_path}/j"]
    assert main([*args, "--kind=truth"]) == 2
    assert "--kind info" in capsys.readouterr().err
    assert main([*args, "--kind=info", "--holdout=1.5", "--epochs=0"]) == 2
    err = capsys.readouterr().err
    assert "--holdout 1.5" in err and "--epochs 0" in err
