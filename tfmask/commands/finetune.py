"""`tfmask finetune ner|sentiment|classify`: a task head on an encoder."""

from __future__ import annotations

import json
import os

from tfmask import presets
from tfmask.commands import (CliError, add_common, add_config_options, add_options, apply_flags,
                             validated, with_default)
from tfmask.config import (FINETUNE_FLAGS, PRECISIONS, STRATEGIES, TRUNCATIONS,
                           FinetuneDataConfig, FinetuneTrainConfig, load_recipe)

#: `tfmask finetune TASK --help`: what each task reads.
_TASK_DESCRIPTIONS = {
    "ner": "Fine-tune a token-classification head for named-entity recognition. --train and "
           "--valid are CoNLL files: a word and its tag per line (the tag in the last column, "
           "or --tag-column), a blank line between sentences; IOB1, IOB2 and IOBES tags are "
           "read (labels come out as IOB2). A sentence longer than --seq-len becomes "
           "overlapping windows. With no --train/--tfds, uses a small embedded data set.",
    "sentiment": "Fine-tune a sequence-classification head (sentiment or any sentence "
                 "label). --train and --valid are TSV or CSV files with a header row or "
                 "plain rows; the text and label columns are found by name (sentence/text, "
                 "label) or given with --text-column / --label-column. With no --train/--tfds, "
                 "uses a small embedded set of reviews.",
    "classify": "Fine-tune a sequence-classification head on one text or a sentence pair "
                "(NLI, paraphrase, question-answer relevance: GLUE MNLI, QNLI, RTE, MRPC, "
                "QQP), any number of classes. A pair is laid out [CLS] text [SEP] text_pair "
                "[SEP] with segment ids 0 and 1, and a long pair is cut longest first. "
                "--train and --valid are TSV or CSV files; --text-column and "
                "--text-pair-column name the two texts (by header name or index). --tfds "
                "reads glue/mnli, glue/qnli, glue/rte, glue/mrpc or glue/qqp (MNLI: "
                "--tfds-valid-split validation_matched). Metrics: accuracy, macro-F1, and "
                "for two classes the F1 of class 1 (GLUE's F1 for MRPC and QQP). With no "
                "--train/--tfds, uses a small embedded set of premise/hypothesis pairs.",
}


def _add_finetune_parser(sub) -> None:
    d, t = FinetuneDataConfig(), FinetuneTrainConfig()
    p = sub.add_parser(
        "finetune", help="fine-tune a NER, sentiment or sentence-pair head",
        description="Fine-tune a token-classification (NER) or sequence-classification "
                    "(sentiment; classify: one text or a sentence pair) head on a BERT "
                    "encoder. With no --train/--tfds, uses small embedded data sets the "
                    "project writes itself.")
    add_common(p)
    tasks = p.add_subparsers(dest="task", required=True, metavar="{ner,sentiment,classify}")
    for task, help_ in (("ner", "named-entity recognition from CoNLL files"),
                        ("sentiment", "sentence classification from TSV/CSV files"),
                        ("classify", "classification of a text or a sentence pair (NLI, "
                                     "paraphrase) from TSV/CSV files or GLUE")):
        tp = tasks.add_parser(task, help=help_, description=_TASK_DESCRIPTIONS[task])
        add_common(tp)
        src = tp.add_argument_group("data")
        add_options(src, (
            "--train", "FILE", "training file" + (" (CoNLL: word ... tag per line)"
                                                  if task == "ner" else " (TSV or CSV)")), (
            "--valid", "FILE", "validation file (picks the best epoch; reported in "
                               "metrics.json)"), (
            "--tfds", "NAME", "a TFDS dataset instead of files: " + {
                "ner": "conll2003", "sentiment": "glue/sst2 or imdb_reviews",
                "classify": "glue/mnli, glue/qnli, glue/rte, glue/mrpc, glue/qqp, glue/sst2, "
                            "..."}[task]), (
            "--tfds-data-dir", "DIR", "TFDS data_dir"), (
            "--tfds-train-split", "SPLIT", with_default("TFDS training split", d.tfds_train_split)), (
            "--tfds-valid-split", "SPLIT",
            with_default("TFDS validation split", d.tfds_valid_split)))
        if task == "ner":
            add_options(src, (
                "--tag-column", int, with_default("column of the tag", f"{d.tag_column}, the last")), (
                "--window-stride", int, with_default("pieces between overlapping windows of a long "
                                                 "sentence", "half the window")))
        else:
            add_options(src, (
                "--text-column", "COLUMN",
                with_default("name or index", "the column named sentence or text")))
            if task == "classify":
                add_options(src, (
                    "--text-pair-column", "COLUMN", "name or index of the second text of a "
                                                    "pair (default: single texts)"))
            add_options(src, (
                "--label-column", "COLUMN",
                with_default("name or index", "the column named label, else the last")), (
                "--truncation", TRUNCATIONS, with_default("which pieces a long text keeps: its "
                                                      "first ones, or the first and the last",
                                                      d.truncation)))
        add_options(src, (
            "--seq-len", int, with_default("max_sequence_length", d.max_sequence_length)), (
            "--max-train-examples", int, "use only the first N training examples (default: "
                                         "all)"))
        add_options(tp.add_argument_group("training"), (
            "--init", "RUN", "a tfmask pretrain or import run (default: random init)"), (
            "--preset", presets.PRESETS, with_default("encoder size without --init", t.preset)), (
            "--epochs", int, with_default("epochs", t.epochs)), (
            "--batch-size", int, with_default("batch size", t.batch_size)), (
            "--learning-rate", float, with_default("peak learning rate", t.learning_rate)), (
            "--warmup-steps", int, with_default("linear warm-up steps", "10%% of the steps")), (
            "--weight-decay", float, with_default("AdamW weight decay", t.weight_decay)), (
            "--layer-decay", float,
            with_default("layer-wise learning-rate decay per layer (1 = off)", t.layer_decay)), (
            "--freeze-epochs", int, with_default("first epochs train the head only",
                                             t.freeze_epochs)), (
            "--mask-rate", float, with_default("masking augmentation: fraction of input pieces "
                                           "replaced by [MASK] while training", t.mask_rate)), (
            "--dropout", float, with_default("dropout before the classifier", t.dropout)), (
            "--encoder-dropout", float, with_default("dropout inside the encoder", "the rate of "
                                                 "--init's config or the preset")), (
            "--early-stopping", int, "stop after N epochs without a better validation metric "
                                     "(default: off)"), (
            "--seed", int, with_default("seed of data order and weights", t.seed)), (
            "--strategy", STRATEGIES, with_default("tf.distribute strategy; auto: "
                                               "MirroredStrategy over the GPUs if there are "
                                               "any, else one device", t.strategy)), (
            "--precision", PRECISIONS, with_default(
                "float32; mixed_bfloat16; mixed_float16 (loss scaling); auto: bfloat16 on "
                "a TPU, a GPU of compute capability >= 8.0 or a CPU with AMX, float16 on "
                "older GPUs, else float32 (config.json records the choice)", t.precision)), (
            "--jit-compile", "switch", "compile train steps with XLA"), (
            "--deterministic", "switch", "enable TF op determinism (identical re-runs)"))
        add_config_options(tp)


def finetune_experiment(args):
    """The `FinetuneExperiment` a `tfmask finetune` command line asks for: recipe, then flags,
    then `--set` (not yet validated: see `FinetuneExperiment.validate`)."""
    from tfmask.config import FinetuneExperiment, apply_overrides

    experiment = load_recipe(args.recipe, FinetuneExperiment) if args.recipe else FinetuneExperiment()
    if args.recipe and experiment.task != args.task:
        raise CliError(f"--recipe {args.recipe!r} is a {experiment.task} recipe, not "
                       f"{args.task}")
    experiment.task = args.task
    apply_flags(experiment, args, FINETUNE_FLAGS)
    return apply_overrides(experiment, args.set)


def _run_finetune(args, experiment) -> int:
    from tfmask.train.finetuning import finetune

    best = finetune(experiment, args.out)
    keys = ("precision", "recall", "f1") if args.task == "ner" else (
        "accuracy", "macro_f1", "positive_f1")
    print(json.dumps({"epoch": best["epoch"], **{k: round(best[k], 4) for k in keys
                                                 if k in best}}))
    out = os.path.abspath(args.out)
    chart = "per_type_f1.png" if args.task == "ner" else "confusion_matrix.png"
    print(f"\nDone. Results in {out}/\n"
          f"  model:        {out}/model.keras  (labels.txt, vocab.txt)\n"
          f"  metrics:      {out}/metrics.json  (best validation epoch), {out}/{chart}\n"
          f"  curves:       {out}/history.png  ({out}/history.json)\n"
          f"  TensorBoard:  tensorboard --logdir {out}/tensorboard\n"
          f"  evaluate:     tfmask evaluate {args.out} --data FILE")
    return 0


COMMANDS = {"finetune": (_add_finetune_parser, validated(finetune_experiment), _run_finetune)}
