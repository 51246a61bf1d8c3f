"""`tfmask study masking` without training: the statistics on hand-computed numbers, the plan
(which cells, paired seeds, comparisons stated before running), the scheduler (finished
cells skipped, a failed cell's dependents skipped) and the report written from run files."""

from __future__ import annotations

import json
import math
import os

import pytest

from tfmask import runs
from tfmask.config import MASKING_STRATEGIES
from tfmask.train import study, study_report
from tfmask.train.study_report import paired_difference, t_quantile


# ----------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------
def test_paired_difference_by_hand():
    """d = 1, 2, 3: mean 2, sd 1, se 1/sqrt(3); t(0.975, 2) = 4.303, t(0.80, 2) = 1.061."""
    stats = paired_difference({0: 3.0, 1: 5.0, 2: 7.0}, {0: 2.0, 1: 3.0, 2: 4.0})
    se = 1 / math.sqrt(3)
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(2.0)
    assert stats["sd"] == pytest.approx(1.0)
    assert stats["ci"] == pytest.approx([2 - 4.303 * se, 2 + 4.303 * se])  # [-0.484, 4.484]
    assert stats["mde"] == pytest.approx((4.303 + 1.061) * se)  # 3.097
    assert study_report.verdict(stats) == "no difference detected (CI covers 0; MDE 3.097)"


def test_an_interval_above_zero_is_better_and_missing_seeds_are_left_out():
    """d = 1.0, 1.2, 0.8, 1.0 (seed 4 missing on one side, seed 5 None): sd = sqrt(0.08/3),
    CI = 1 +- 3.182 sd / 2."""
    stats = paired_difference({0: 1.5, 1: 1.7, 2: 1.3, 3: 1.5, 4: 9.0, 5: None},
                              {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5, 5: 0.5})
    sd = math.sqrt(0.08 / 3)
    assert stats["seeds"] == [0, 1, 2, 3]
    assert stats["ci"] == pytest.approx([1 - 3.182 * sd / 2, 1 + 3.182 * sd / 2])
    assert study_report.verdict(stats) == "better (CI above 0)"
    worse = paired_difference({0: 0.0, 1: 0.1}, {0: 1.0, 1: 1.0})
    assert study_report.verdict(worse) == "worse (CI below 0)"
    one = paired_difference({0: 2.0}, {0: 1.0})
    assert one["mean"] == 1.0 and one["ci"] is None and one["mde"] is None
    assert study_report.claim_status(one) == "not measured"


def test_t_table_against_scipy():
    """The table's quantiles are Student's t to 3 decimals; beyond 30 df within 0.002."""
    t = pytest.importorskip("scipy.stats").t
    for df in range(1, 31):
        assert t_quantile(0.975, df) == pytest.approx(t.ppf(0.975, df), abs=6e-4)
        assert t_quantile(0.80, df) == pytest.approx(t.ppf(0.80, df), abs=6e-4)
    for df in (40, 60, 120, 1000):
        assert t_quantile(0.975, df) == pytest.approx(t.ppf(0.975, df), abs=2e-3)
        assert t_quantile(0.80, df) == pytest.approx(t.ppf(0.80, df), abs=2e-3)


# ----------------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def data(tmp_path):
    """A data folder shaped as ../shared/data, a few lines of each file."""
    root = tmp_path / "data"
    for sub in ("conll2003", "sst2", "corpus"):
        (root / sub).mkdir(parents=True)
    sentence = "-DOCSTART- -X- -X- O\n\n" + "\n\n".join(
        f"Alice NNP B-NP B-PER\nmet NN I-NP O\nBob{i} NNP B-NP B-PER" for i in range(6))
    (root / "conll2003" / "train.txt").write_text(sentence + "\n")
    (root / "conll2003" / "valid.txt").write_text(sentence + "\n")
    rows = "".join(f"a {'good' if i % 2 else 'bad'} film {i}\t{i % 2}\n" for i in range(6))
    (root / "sst2" / "train.tsv").write_text("sentence\tlabel\n" + rows)
    (root / "sst2" / "dev.tsv").write_text("sentence\tlabel\n" + rows)
    (root / "corpus" / "a.txt").write_text("".join(f"line {i} of a\n" for i in range(50)))
    (root / "corpus" / "b.txt").write_text("".join(f"line {i} of b\n" for i in range(50)))
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    return str(root), str(checkpoint)


def _flag(cell, flag):
    return cell.argv[cell.argv.index(flag) + 1]


def test_plan_has_every_cell_paired_by_seed(data, tmp_path):
    source, checkpoint = data
    out = str(tmp_path / "out")
    plan = study.make_plan(out, "smoke", seeds=2, data=source, checkpoint=checkpoint)
    s = len(MASKING_STRATEGIES)
    a = [c for c in plan.cells if c.part == "A"]
    pretrain = [c for c in a if c.kind == "pretrain"]
    assert len(pretrain) == (s + 2) * 2  # each strategy at 15%, random at 30% and 40%
    assert len(a) - len(pretrain) == (s + 2 + 1) * 2 * 2  # + random-init, 2 tasks, 2 seeds
    assert {c.condition for c in pretrain} == {f"{m}@0.15" for m in MASKING_STRATEGIES} | {
        "random@0.3", "random@0.4"}
    first, *rest = pretrain
    assert "--vocab-size" in first.argv and first.needs == []
    assert all(_flag(c, "--vocab") == os.path.join(out, first.name, "vocab.txt")
               and c.needs == [first.name] for c in rest)
    # Equal compute: the same steps, batch and length; the slots grow with the rate.
    for flag in ("--steps", "--batch-size", "--seq-len", "--preset"):
        assert len({_flag(c, flag) for c in pretrain}) == 1
    slots = {c.condition: int(_flag(c, "--max-predictions")) for c in pretrain}
    assert slots["random@0.15"] < slots["random@0.3"] < slots["random@0.4"] <= 32
    # Pairing: a cell of seed s pretrains and fine-tunes with --seed s.
    assert all(_flag(c, "--seed") == str(c.seed) for c in plan.cells if c.seed is not None)
    for c in a:
        if c.kind == "finetune" and c.condition != "random-init":
            init = _flag(c, "--init")
            assert init.endswith(f"seed{c.seed}") and c.needs == [os.path.relpath(init, out)]
    # Part B: the import, continued runs of the task's strategies, each start with and
    # without augmentation.
    b = [c for c in plan.cells if c.part == "B"]
    assert b[0].argv == ["import", checkpoint, "--out", os.path.join(out, "B/import")]
    continued = [c for c in b if c.kind == "pretrain"]
    assert {c.condition for c in continued} == {
        f"{t}:continued-{m}" for t, ms in study.CONTINUED_STRATEGIES.items() for m in ms
        if m in MASKING_STRATEGIES}
    assert all(_flag(c, "--init") == os.path.join(out, "B/import") for c in continued)
    tuned = [c for c in b if c.kind == "finetune"]
    assert len(tuned) == (1 + len(continued) // 4) * 2 * 2 * 2  # 2 tasks, 2 seeds
    assert {_flag(c, "--mask-rate") for c in tuned} == {"0", "0.1"}
    # The data subsets: DOCSTART left out, the budget's sizes.
    ner = open(os.path.join(out, "data", "ner_train.txt")).read()
    assert "-DOCSTART-" not in ner and ner.count("B-PER") == 12
    assert open(os.path.join(out, "data", "ner_text.txt")).readline() == "Alice met Bob0\n"


def test_comparisons_are_stated_and_a_different_plan_is_refused(data, tmp_path):
    source, _ = data
    out = str(tmp_path / "out")
    plan = study.make_plan(out, "smoke", seeds=2, part="A", data=source)
    ids = [c.id for c in plan.comparisons]
    others = [m for m in MASKING_STRATEGIES if m != "random"]
    for metric in ("mlm", "ner", "sst2"):
        assert all(f"A:{metric}:{m}@0.15 vs random@0.15" in ids for m in others)
        assert f"A:{metric}:random@0.4 vs random@0.15" in ids
    assert "A:ner:random@0.15 vs random-init" in ids
    study.claim_plan(plan, out)
    stated = json.load(open(os.path.join(out, "plan.json")))
    assert [c["id"] for c in stated["comparisons"]] == ids and "written" in stated
    study.claim_plan(study.make_plan(out, "smoke", seeds=2, part="A", data=source), out)
    with pytest.raises(study.StudyError, match=r"planned otherwise \(.*seeds"):
        study.claim_plan(study.make_plan(out, "smoke", seeds=3, part="A", data=source), out)


def test_missing_data_is_one_clear_error(tmp_path):
    with pytest.raises(study.StudyError, match=r"sst2/train.tsv.*not all found in .*nothing"):
        study.make_plan(str(tmp_path / "out"), "smoke", data=str(tmp_path / "nothing"))


# ----------------------------------------------------------------------------------------------
# Running and reporting, from run files (no training)
# ----------------------------------------------------------------------------------------------
def _finish(out: str, cell, value: float) -> None:
    """Writes the files by which a finished run of `cell` is known, holding `value`."""
    run_dir = os.path.join(out, cell.name)
    os.makedirs(run_dir, exist_ok=True)
    for name in runs.FINAL_FILES[cell.kind]:
        open(os.path.join(run_dir, name), "w").close()
    if cell.kind == "pretrain":
        runs.write_json(os.path.join(run_dir, "history.json"),
                        [{"step": 4, "eval_masked_accuracy": value}])
    else:
        runs.write_json(os.path.join(run_dir, "metrics.json"),
                        {"f1": value, "accuracy": value})


def test_finished_cells_are_skipped_and_a_failure_skips_its_dependents(data, tmp_path):
    source, _ = data
    out = str(tmp_path / "out")
    plan = study.make_plan(out, "smoke", seeds=2, part="A", data=source,
                           strategies=["random", "span"])
    for cell in plan.cells:
        if not cell.name.endswith("/span-0.15/seed1"):  # that pretraining and its fine-tuning
            _finish(out, cell, 0.5)
    left = study.pending(plan.cells, out)
    assert [c.name for c in left] == ["A/pretrain/span-0.15/seed1", "A/ner/span-0.15/seed1",
                                      "A/sst2/span-0.15/seed1"]
    # The one pretraining cell left fails (a bad flag, answered before TensorFlow loads):
    # its fine-tuning cells are skipped, nothing else runs again.
    left[0].argv = ["pretrain", "--steps", "0", "--out", os.path.join(out, left[0].name)]
    lines = []
    states = study.run_cells(plan.cells, out, jobs=2, log=lines.append)
    assert states["A/pretrain/span-0.15/seed1"]["state"] == "failed"
    assert "--steps must be >= 1" in states["A/pretrain/span-0.15/seed1"]["why"]
    assert states["A/ner/span-0.15/seed1"]["state"] == "skipped"
    assert sum(s["state"] == "done" for s in states.values()) == len(plan.cells) - 3
    assert lines[0] == f"{len(plan.cells) - 3} of {len(plan.cells)} cells already finished; 3 " \
                       "to run."


def test_results_report_the_paired_differences(data, tmp_path):
    """NER F1 of span = random + 0.01 * (seed + 1): mean +0.015, sd 0.00707 over 2 seeds."""
    source, _ = data
    out = str(tmp_path / "out")
    plan = study.make_plan(out, "smoke", seeds=2, part="A", data=source,
                           strategies=["random", "span"])
    for cell in plan.cells:
        bonus = 0.01 * (cell.seed + 1) if cell.condition == "span@0.15" else 0.0
        _finish(out, cell, 0.5 + bonus)
    states = study.run_cells(plan.cells, out, log=lambda _: None)
    docs = str(tmp_path / "docs" / "masking_study.md")
    results = study_report.write_results(plan, out, states, docs=docs)
    found = {c["id"]: c for c in results["comparisons"]}["A:ner:span@0.15 vs random@0.15"]
    se = math.sqrt(0.00005) / math.sqrt(2)
    assert found["mean"] == pytest.approx(0.015)
    assert found["ci"] == pytest.approx([0.015 - 12.706 * se, 0.015 + 12.706 * se])
    assert found["claim_status"].startswith("not detected here")
    assert json.load(open(os.path.join(out, "results.json"))) == json.loads(json.dumps(results))
    table = open(os.path.join(out, "results.md")).read()
    assert "| span@0.15 | 0.5150 ± 0.0071 (n=2) | 0.5150 ± 0.0071 (n=2) |" in table
    assert os.path.getsize(os.path.join(out, "comparisons.png")) > 0
    doc = open(docs).read()
    assert "--budget smoke" in doc and "span masking beats token masking" in doc
    assert os.path.exists(str(tmp_path / "docs" / "masking_study.png"))
