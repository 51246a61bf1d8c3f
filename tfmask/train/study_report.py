"""The masking study's numbers: paired differences, their intervals, and the report.

Each comparison of `study.Plan` is a paired difference over seeds: seed s of the treatment
minus seed s of the reference (the same seed gives both the same fine-tuning data order), so
the variation that the seed brings to both cancels. For n seeds with differences d:

    mean   = sum(d) / n
    sd     = sqrt(sum((d - mean)^2) / (n - 1))
    95% CI = mean +- t(0.975, n - 1) * sd / sqrt(n)                     (Student t)
    MDE    = (t(0.975, n - 1) + t(0.80, n - 1)) * sd / sqrt(n)

The MDE (minimal detectable effect) is the true difference a two-sided 5% paired t-test would
find 80% of the time with this spread and this many seeds (the usual normal-shift
approximation of the non-central t). A comparison reads "no difference detected" only when its
CI covers 0, and then says its MDE: a smaller effect may exist unseen.

The quantiles of Student's t are a table (SciPy is not a dependency): exact to the three
decimals printed in statistics tables for 1-30 degrees of freedom, and interpolated in 1/df
towards the normal's beyond 30.
"""

from __future__ import annotations

import json
import math
import os

#: t(0.975, df) and t(0.80, df) for df = 1..30; the last entry of each is the normal's.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042, 1.960)
_T80 = (1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879, 0.876, 0.873,
        0.870, 0.868, 0.866, 0.865, 0.863, 0.862, 0.861, 0.860, 0.859, 0.858, 0.858, 0.857,
        0.856, 0.856, 0.855, 0.855, 0.854, 0.854, 0.842)


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile at p = 0.975 or 0.80 with `df` >= 1 degrees of freedom."""
    table = {0.975: _T975, 0.80: _T80}[p]
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= 30:
        return table[df - 1]
    return table[-1] + (table[29] - table[-1]) * 30 / df  # linear in 1/df to the normal


def paired_difference(treatment: dict, reference: dict) -> dict:
    """Mean, sd, 95% CI and MDE of `treatment[s] - reference[s]` over the seeds s both have
    (values None are missing). With one seed there is a mean and no interval."""
    seeds = sorted(s for s in set(treatment) & set(reference)
                   if treatment[s] is not None and reference[s] is not None)
    d = [treatment[s] - reference[s] for s in seeds]
    n = len(d)
    out = {"n": n, "seeds": seeds, "differences": d, "mean": None, "sd": None, "ci": None,
           "mde": None}
    if n == 0:
        return out
    mean = sum(d) / n
    out["mean"] = mean
    if n < 2:
        return out
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    se = sd / math.sqrt(n)
    t = t_quantile(0.975, n - 1)
    out.update(sd=sd, ci=[mean - t * se, mean + t * se],
               mde=(t + t_quantile(0.80, n - 1)) * se)
    return out


def verdict(stats: dict) -> str:
    """What a paired difference says, in words (higher is better for every metric)."""
    if stats["ci"] is None:
        return ("no interval (fewer than 2 seeds)" if stats["n"] else "no data (cells "
                "missing)")
    low, high = stats["ci"]
    if low > 0:
        return "better (CI above 0)"
    if high < 0:
        return "worse (CI below 0)"
    return f"no difference detected (CI covers 0; MDE {stats['mde']:.3f})"


def claim_status(stats: dict) -> str:
    """Whether a source's claim (treatment better) holds in this study."""
    if stats["ci"] is None:
        return "not measured"
    if stats["ci"][0] > 0:
        return "holds here"
    if stats["ci"][1] < 0:
        return "reversed here"
    return f"not detected here (an effect under {stats['mde']:.3f} would go unseen)"


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------
def collect(plan, out: str, states: dict) -> dict:
    """results.json's content: every cell's number, each condition's summary, and each
    comparison of the plan with its paired difference."""
    from tfmask.train.study import read_metric

    values: dict[tuple, dict] = {}
    cells = []
    for cell in plan.cells:
        value = read_metric(cell, out)
        state = states.get(cell.name, {})
        cells.append({"name": cell.name, "part": cell.part, "metric": cell.metric,
                      "condition": cell.condition, "seed": cell.seed, "value": value,
                      "state": state.get("state", "not run"), "seconds": state.get("seconds"),
                      **({"why": state["why"]} if "why" in state else {})})
        if cell.metric is not None:
            values.setdefault((cell.part, cell.metric, cell.condition), {})[cell.seed] = value
    conditions = []
    for (part, metric, name), by_seed in values.items():
        got = [v for v in by_seed.values() if v is not None]
        mean = sum(got) / len(got) if got else None
        sd = (math.sqrt(sum((v - mean) ** 2 for v in got) / (len(got) - 1))
              if len(got) > 1 else None)
        conditions.append({"part": part, "metric": metric, "condition": name, "n": len(got),
                           "mean": mean, "sd": sd, "values": by_seed})
    comparisons = []
    for c in plan.comparisons:
        stats = paired_difference(
            _by_seed(values, c.part, c.metric, c.treatment),
            _by_seed(values, c.part, c.metric, c.reference))
        comparisons.append({"id": c.id, "part": c.part, "metric": c.metric,
                            "treatment": c.treatment, "reference": c.reference,
                            "question": c.question, "claim": c.claim, **stats,
                            "verdict": verdict(stats),
                            **({"claim_status": claim_status(stats)} if c.claim else {})})
    seconds = [c["seconds"] for c in cells if c["seconds"] is not None]
    return {"study": "masking", "budget_name": plan.budget_name,
            "budget": plan.to_dict()["budget"], "seeds": plan.seeds, "part": plan.part,
            "strategies": plan.strategies, "cells": cells, "conditions": conditions,
            "comparisons": comparisons,
            "cell_seconds": {"total": round(sum(seconds), 1), "count": len(seconds)}}


def _by_seed(values: dict, part: str, metric: str, name: str) -> dict:
    """The values of a condition by seed; part B's MLM conditions carry their task."""
    return values.get((part, metric, name), {})


def _fmt(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _mean_sd(row: dict | None) -> str:
    if row is None or row["mean"] is None:
        return "–"
    sd = f" ± {row['sd']:.4f}" if row["sd"] is not None else ""
    return f"{row['mean']:.4f}{sd} (n={row['n']})"


METRIC_NAMES = {"mlm": "held-out MLM accuracy", "ner": "NER valid entity F1",
                "sst2": "SST-2 dev accuracy"}


def tables(results: dict) -> str:
    """The results as Markdown: conditions per part (mean ± sd over seeds), then every
    comparison with its paired difference, CI, MDE and verdict."""
    rows = {(r["part"], r["metric"], r["condition"]): r for r in results["conditions"]}
    lines = []
    a = sorted({r["condition"] for r in results["conditions"] if r["part"] == "A"},
               key=lambda n: (n == "random-init", n))
    if a:
        lines += ["### Part A: from scratch (mean ± sd over seeds)", "",
                  "| condition | held-out MLM accuracy | NER valid F1 | SST-2 dev accuracy |",
                  "|---|---|---|---|"]
        lines += [f"| {n} | " + " | ".join(_mean_sd(rows.get(("A", m, n)))
                                             for m in ("mlm", "ner", "sst2")) + " |" for n in a]
        lines.append("")
    b = [r for r in results["conditions"] if r["part"] == "B"]
    if b:
        lines += ["### Part B: from all-MiniLM-L6-v2 (mean ± sd over seeds)", "",
                  "| task | start | fine-tuned (no augmentation) | fine-tuned with "
                  "augmentation | continued MLM accuracy |", "|---|---|---|---|---|"]
        for task in ("ner", "sst2"):
            starts = sorted({r["condition"].split("+")[0] for r in b if r["metric"] == task},
                            key=lambda n: (n != "import", n))
            for start in starts:
                aug = next((r for r in b if r["metric"] == task and
                            r["condition"].startswith(start + "+")), None)
                lines.append(f"| {task} | {start} | {_mean_sd(rows.get(('B', task, start)))} | "
                             f"{_mean_sd(aug)} | "
                             f"{_mean_sd(rows.get(('B', 'mlm', f'{task}:{start}')))} |")
        lines.append("")
    lines += ["### Comparisons (stated before the study ran)", "",
              "Paired over seeds: treatment − reference, 95% CI (Student t), MDE at 80% power.",
              "", "| part | metric | treatment − reference | mean | 95% CI | MDE | n | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for c in results["comparisons"]:
        ci = "–" if c["ci"] is None else f"[{c['ci'][0]:+.4f}, {c['ci'][1]:+.4f}]"
        mean = "–" if c["mean"] is None else f"{c['mean']:+.4f}"
        lines.append(f"| {c['part']} | {c['metric']} | {c['treatment']} − {c['reference']} | "
                     f"{mean} | {ci} | {_fmt(c['mde'])} | {c['n']} | {c['verdict']} |")
    return "\n".join(lines) + "\n"


def claims(results: dict) -> str:
    """Each source claim the study tests, with what each of its comparisons found."""
    lines = ["| claim | comparison | metric | mean [95% CI] | here |", "|---|---|---|---|---|"]
    for c in results["comparisons"]:
        if not c["claim"]:
            continue
        found = "–" if c["ci"] is None else (f"{c['mean']:+.4f} [{c['ci'][0]:+.4f}, "
                                             f"{c['ci'][1]:+.4f}]")
        lines.append(f"| {c['claim']} | {c['part']}: {c['treatment']} − {c['reference']} | "
                     f"{c['metric']} | {found} | {c['claim_status']} |")
    return "\n".join(lines) + "\n"


def plot_comparisons(results: dict, path: str):
    """One panel per metric: each comparison's mean paired difference and its 95% CI, with
    the line at 0 (matplotlib's object API, as `tfmask.train.plots`)."""
    from tfmask.train.plots import _figure, _save

    metrics = [m for m in ("mlm", "ner", "sst2")
               if any(c["metric"] == m for c in results["comparisons"])]
    rows = max([sum(1 for c in results["comparisons"] if c["metric"] == m) for m in metrics]
               or [1])
    fig = _figure(6 * max(1, len(metrics)), 1.2 + 0.35 * rows)
    axes = fig.subplots(1, max(1, len(metrics)), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        chosen = [c for c in results["comparisons"] if c["metric"] == metric]
        for y, c in enumerate(chosen):
            if c["mean"] is None:
                continue
            low, high = c["ci"] if c["ci"] else (c["mean"], c["mean"])
            color = "C2" if low > 0 else "C3" if high < 0 else "C0"
            ax.errorbar(c["mean"], y, xerr=[[c["mean"] - low], [high - c["mean"]]], fmt="o",
                        color=color, capsize=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(chosen)))
        ax.set_yticklabels([f"{c['part']}: {c['treatment']} − {c['reference']}"
                            for c in chosen], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{METRIC_NAMES[metric]}: paired difference, 95% CI", fontsize=9)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def write_results(plan, out: str, states: dict, docs: str | None = None) -> dict:
    """Writes OUT/results.json, OUT/results.md and OUT/comparisons.png (and, with `docs`,
    the study's report there); returns the results."""
    from tfmask.train.study import _write

    previous = {}
    cells_path = os.path.join(out, "cells.json")
    if os.path.exists(cells_path):  # seconds of cells finished by an earlier invocation
        with open(cells_path, encoding="utf-8") as fh:
            previous = json.load(fh)
    merged = {name: (previous[name] if state.get("seconds") is None and name in previous
                     and previous[name].get("state") == "done" == state.get("state")
                     else state) for name, state in states.items()}
    _write(cells_path, json.dumps(merged, indent=1))
    results = collect(plan, out, merged)
    _write(os.path.join(out, "results.json"), json.dumps(results, indent=1))
    _write(os.path.join(out, "results.md"), f"# Masking study: budget {plan.budget_name}, "
           f"{plan.seeds} seeds\n\n" + tables(results) + "\n### Claims of the sources\n\n"
           + claims(results))
    plot_comparisons(results, os.path.join(out, "comparisons.png"))
    if docs:
        write_doc(results, docs, out)
    return results


# ----------------------------------------------------------------------------------------------
# docs/masking_study.md
# ----------------------------------------------------------------------------------------------
_DESIGN = """\
## How it was run

    tfmask study masking --budget {budget} --seeds {seeds} --out DIR

Re-running the same command resumes: every cell is a run directory, and a finished one is
skipped. `--budget smoke` checks the mechanics (every cell, a few steps each), `cpu-hour` is
the CPU study, `gpu` the full one (bert_mini, the full fine-tuning sets).

- **Part A, from scratch.** `{preset}` pretrained with equal compute ({steps} steps of
  {batch} sequences of {seq_len} word pieces) on `../shared/data/corpus` with each strategy at
  a 15% selection rate, and `random` at 30% and 40%; then fine-tuned ({epochs} epoch(s), learning
  rate {scratch_lr:g}) on CoNLL-2003 and SST-2. `random-init` fine-tunes a random `{preset}`
  (no pretraining). The vocabulary ({vocab} pieces) is learned once and shared.
- **Part B, from all-MiniLM-L6-v2** (`tfmask import`): continued pretraining (`tfmask pretrain
  --init`, {continued_steps} steps of {continued_batch} x {continued_seq_len}) on each task's
  own training text with `random`, `whole_word` and `entity` (NER) or `keyword` (SST-2), then
  fine-tuning (learning rate {checkpoint_lr:g}), against fine-tuning the import itself; each
  with and without masking augmentation during fine-tuning (`--mask-rate {aug:g}`).
- **Rates** are measured in word pieces after the `--max-predictions` cap, so the cap is
  raised with the rate: rate + 5% of the sequence (15% of 128: 26 slots; 40%: 58).
- **Held-out MLM accuracy** is each pretraining run's own evaluation on held-out lines, with
  BERT's masking (15%, 80/10/10) whatever the run trained with.
- **Data**: NER {ner_train} training / {ner_valid} validation sentences, SST-2 {sst2_train}
  training / {sst2_valid} dev rows (0 = all); validation and dev splits only: the held-out
  test sets are not used.
- **Seeds** pair the cells: seed s pretrains and fine-tunes with `--seed s` in every condition,
  so fine-tuning sees the same data order. Each comparison is a paired difference over seeds
  with a 95% Student-t interval and the minimal detectable effect (MDE: the difference found
  80% of the time by a two-sided 5% test). "No difference detected" is said only when the
  interval covers 0, and then with its MDE.
"""


def _findings(results: dict) -> list[str]:
    """Sentences for the comparisons whose interval excludes 0, then a count of the rest."""
    out = []
    for c in results["comparisons"]:
        if c["ci"] is None or c["ci"][0] <= 0 <= c["ci"][1]:
            continue
        word = "above" if c["ci"][0] > 0 else "below"
        out.append(f"- Part {c['part']}, {METRIC_NAMES[c['metric']]}: {c['treatment']} is "
                   f"{word} {c['reference']} by {c['mean']:+.4f} (95% CI [{c['ci'][0]:+.4f}, "
                   f"{c['ci'][1]:+.4f}], {c['n']} seeds).")
    null = [c for c in results["comparisons"] if c["ci"] is not None
            and c["ci"][0] <= 0 <= c["ci"][1]]
    if null:
        mdes = sorted(c["mde"] for c in null)
        out.append(f"- {len(null)} of {len(results['comparisons'])} comparisons detect no "
                   f"difference: their intervals cover 0, with MDEs from {mdes[0]:.4f} to "
                   f"{mdes[-1]:.4f} (smaller effects would go unseen at this many seeds).")
    missing = [c for c in results["comparisons"] if c["ci"] is None]
    if missing:
        out.append(f"- {len(missing)} comparisons have no interval (missing cells or one "
                   "seed).")
    return out or ["- No comparison has numbers yet."]


def write_doc(results: dict, path: str, out: str) -> None:
    """Writes the study's report (docs/masking_study.md): design, numbers, what they say, and
    where the sources' claims do not hold at this scale; the plot is copied beside it."""
    import shutil

    from tfmask.train.study import AUGMENTATION_RATE, _write

    b = results["budget"]
    image = os.path.splitext(path)[0] + ".png"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    shutil.copyfile(os.path.join(out, "comparisons.png"), image)
    k = len(results["comparisons"])
    claimed = [c for c in results["comparisons"] if c["claim"]]
    unmet = [c for c in claimed if not c["claim_status"].startswith("holds")]
    smoke = results["budget_name"] == "smoke"
    text = "\n".join([
        "# Does the masking choice matter? The masking study",
        "",
        ("**These numbers come from `--budget smoke`: a check that every cell runs, with "
         "a few steps on a few examples. They say nothing about masking; run `--budget "
         "cpu-hour` or `--budget gpu` and this file is rewritten.**" if smoke else
         f"Budget `{results['budget_name']}`, {results['seeds']} seeds, "
         f"{results['cell_seconds']['count']} cells in "
         f"{results['cell_seconds']['total'] / 3600:.1f} hours of cell time."),
        "",
        "The project's sources claim that what is masked matters (whole words, spans, "
        "entities, high-PMI n-grams, task keywords, higher rates), that masked prediction on "
        "a task's own text before fine-tuning helps, and that masking during fine-tuning "
        "helps. This study measures each claim at a small scale, with comparisons stated "
        "before it ran.",
        "",
        _DESIGN.format(budget=results["budget_name"], seeds=results["seeds"],
                       preset=b["preset"], steps=b["steps"], batch=b["batch_size"],
                       seq_len=b["seq_len"], epochs=b["epochs"],
                       scratch_lr=b["scratch_learning_rate"], vocab=b["vocabulary_size"],
                       continued_steps=b["continued_steps"],
                       continued_batch=b["continued_batch_size"],
                       continued_seq_len=b["continued_seq_len"],
                       checkpoint_lr=b["checkpoint_learning_rate"], aug=AUGMENTATION_RATE,
                       ner_train=b["ner_train"], ner_valid=b["ner_valid"],
                       sst2_train=b["sst2_train"], sst2_valid=b["sst2_valid"]),
        "## Results",
        "",
        tables(results),
        f"![paired differences]({os.path.basename(image)})",
        "",
        "## What the numbers say",
        "",
        *_findings(results),
        "",
        f"{k} comparisons at 5% each: about {k / 20:.1f} would come out 'better' or 'worse' "
        "by chance alone if nothing mattered, so a single interval that barely excludes 0 is "
        "weak evidence; a direction that repeats across tasks and metrics is stronger.",
        "",
        "## The sources' claims at this scale",
        "",
        claims(results),
        (f"{len(unmet)} of the {len(claimed)} claim comparisons do not hold here (not "
         "detected or reversed). At this scale (small encoders, short pretraining, task "
         "subsets) a claim made for BERT-base or larger, trained for days, may simply need "
         "more compute to show; 'not detected' with its MDE bounds how large the effect can "
         "be here, it does not refute the claim at the sources' scale." if claimed else ""),
        "",
    ])
    _write(path, text)
