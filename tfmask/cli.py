"""The `tfmask` command line. The only module that reads `sys.argv` or the environment.

A command runs in two phases, so that a mistake is answered at once:

1. `check`: parse the arguments, resolve the configuration (recipe, then flags, then `--set`)
   and validate it, paths included, in plain Python. Help, `--version` and every argument
   error come back in a fraction of a second, before TensorFlow (seconds to import) loads.
2. `run`: import TensorFlow (its start-up lines held back unless `--debug`) and do the work.
   A run directory this command created is removed again if the command fails before
   training has written anything worth keeping.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile

import tfmask
from tfmask import presets
from tfmask.config import (FINETUNE_FLAGS, MASKING_STRATEGIES, MIXED_PRECISIONS, PACKINGS,
                           PRETRAIN_FLAGS, STRATEGIES, TRUNCATIONS, DataConfig,
                           FinetuneDataConfig, FinetuneTrainConfig, MaskingConfig,
                           TokenizerConfig, TrainConfig, check_run_dir, load_recipe)


class CliError(Exception):
    """An error to print as one line, without a stack trace."""


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line: what is wrong and where help is."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _default(text: str, value) -> str:
    """A help text with the flag's default (the configuration's, since the flag's own default
    is None: only a flag that is given overrides a recipe)."""
    return f"{text} (default: {value})"


def _apply_flags(experiment, args, flags: dict[str, str]) -> None:
    """Copies every flag that was given onto its field (`flags`: `{"train.batch_size":
    "--batch-size"}`); a flag that was not given is None and leaves a recipe's value."""
    for key, flag in flags.items():
        value = getattr(args, flag[2:].replace("-", "_"), None)  # a task may lack the flag
        if value is not None:
            section, field = key.split(".")
            setattr(getattr(experiment, section), field, value)


def _add_common(p) -> None:
    """The options every command has: --debug also after the command's name."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show TensorFlow's start-up lines and full stack traces")


def _add_config_options(p) -> None:
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set train.clipnorm=0.5")
    p.add_argument("--recipe", metavar="FILE",
                   help="a recipe (pipelines/*.py defining config()); flags override it")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")


# ----------------------------------------------------------------------------------------------
# pretrain
# ----------------------------------------------------------------------------------------------
def _options(group, *rows) -> None:
    """Adds `(flag, kind, help)` options; kind: int or float (a number), a tuple of choices,
    a metavar (a string), or "switch" (on when given; None otherwise, so a recipe's value
    stands)."""
    for flag, kind, help_ in rows:
        if kind == "switch":
            group.add_argument(flag, action="store_true", default=None, help=help_)
        elif isinstance(kind, tuple):
            group.add_argument(flag, choices=kind, help=help_)
        elif kind in (int, float):
            group.add_argument(flag, type=kind, metavar="N" if kind is int else "X", help=help_)
        else:
            group.add_argument(flag, metavar=kind, help=help_)


def _add_pretrain_parser(sub) -> None:
    d, tok, m, t = DataConfig(), TokenizerConfig(), MaskingConfig(), TrainConfig()
    p = sub.add_parser(
        "pretrain", help="pretrain a BERT encoder with masked-language modelling",
        description="Pretrain a BERT encoder with dynamic MLM masking done in the tf.data "
                    "graph. With no --corpus, trains on an embedded corpus the project writes "
                    "itself. Re-running the same command resumes from the last checkpoint.")
    _add_common(p)
    src = p.add_argument_group("data")
    src.add_argument("--corpus", nargs="+", metavar="GLOB",
                     help="text files (one sentence/paragraph a line, blank line between "
                          "documents) (default: the embedded corpus)")
    src.add_argument("--eval-corpus", nargs="+", metavar="GLOB",
                     help="held-out text for eval loss/accuracy at each checkpoint")
    _options(src, (
        "--eval-holdout", float,
        _default("without --eval-corpus, hold out this fraction of lines", d.eval_holdout)), (
        "--tfds", "NAME:SPLIT",
        "a TFDS text dataset instead of files, e.g. wikipedia/20230601.en:train"), (
        "--text-key", "KEY", _default("TFDS feature holding the text", d.tfds_text_key)), (
        "--tfds-data-dir", "DIR", "TFDS data_dir"), (
        "--seq-len", int, _default("max_sequence_length", d.max_sequence_length)), (
        "--packing", PACKINGS, _default("full_sentences packs consecutive lines of a document "
                                        "into a sequence; one_line makes one of each line",
                                        d.packing)))
    vocab = p.add_argument_group("vocabulary")
    _options(vocab, (
        "--vocab", "FILE", "a vocab.txt to use (default: learn one from the corpus)"), (
        "--vocab-size", int, _default("size of the learned vocabulary", tok.vocabulary_size)))
    vocab.add_argument("--cased", action="store_true",
                       help="keep case and accents (default: lower-case, accents stripped)")
    _options(p.add_argument_group("masking"), (
        "--masking", MASKING_STRATEGIES,
        _default("select word pieces, whole words or spans of words", m.strategy)), (
        "--selection-rate", float,
        _default("fraction of pieces selected for prediction", m.selection_rate)), (
        "--max-predictions", int, _default("prediction slots per sequence", m.max_predictions)), (
        "--mask-token-rate", float,
        _default("fraction of the selected pieces replaced by [MASK]", m.mask_token_rate)), (
        "--random-token-rate", float,
        _default("fraction replaced by a random token (the rest stay)", m.random_token_rate)))
    rates = (f"by preset, {presets.default_learning_rate('bert_tiny')} for bert_tiny ... "
             f"{presets.default_learning_rate('bert_base')} for bert_base")
    _options(p.add_argument_group("training"), (
        "--preset", presets.PRESETS, _default("encoder size", t.preset)), (
        "--batch-size", int, _default("global batch size", t.batch_size)), (
        "--steps", int, _default("training steps", t.steps)), (
        "--save-every", int, _default("checkpoint interval in steps", t.save_every)), (
        "--eval-steps", int, _default("eval batches per checkpoint", t.eval_steps)), (
        "--learning-rate", float, _default("peak learning rate", rates)), (
        "--warmup-steps", int, _default("linear warm-up steps", "10%% of --steps")), (
        "--weight-decay", float, _default("AdamW weight decay", t.weight_decay)), (
        "--seed", int, _default("seed of data order, masks and weights", t.seed)), (
        "--strategy", STRATEGIES, _default("tf.distribute strategy; auto: MirroredStrategy "
                                           "over the GPUs if there are any, else one device",
                                           t.strategy)), (
        "--mixed-precision", MIXED_PRECISIONS,
        "a Keras mixed-precision policy (default: float32 throughout)"), (
        "--jit-compile", "switch", "compile train steps with XLA"), (
        "--deterministic", "switch", "enable TF op determinism (bit-identical resumed runs)"))
    _add_config_options(p)


def pretrain_experiment(args):
    """The `Experiment` a `tfmask pretrain` command line asks for: recipe, then flags, then
    `--set` (not yet validated: see `Experiment.validate`)."""
    from tfmask.config import Experiment, apply_overrides

    experiment = load_recipe(args.recipe) if args.recipe else Experiment()
    _apply_flags(experiment, args, PRETRAIN_FLAGS)
    if args.cased:
        experiment.tokenizer.lower_case = False
    t = experiment.train
    if args.save_every is None and all(type(v) is int and v > 0 for v in (t.steps, t.save_every)
                                       ) and t.steps % t.save_every:
        # --steps that is not a multiple of the (unasked-for) interval: use the largest
        # interval that divides it and is no longer than the one configured.
        t.save_every = max(d for d in range(1, min(t.steps, t.save_every) + 1)
                           if t.steps % d == 0)
    return apply_overrides(experiment, args.set)


def _check_out(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"--out {out}: not a directory")


def _validated(resolve):
    """A command's check: the experiment `resolve(args)` builds, validated, and `--out`."""
    def check(args):
        experiment = resolve(args)
        experiment.validate()
        _check_out(args.out)
        return experiment
    return check


def _run_pretrain(args, experiment) -> int:
    from tfmask.train.pretraining import pretrain

    summary = pretrain(experiment, args.out)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                      for k, v in summary.items()}))
    out = os.path.abspath(args.out)
    print(f"\nDone. Results in {out}/\n"
          f"  encoder:      {out}/encoder.keras\n"
          f"  curves:       {out}/history.png  ({out}/history.json)\n"
          f"  TensorBoard:  tensorboard --logdir {out}/tensorboard")
    return 0


# ----------------------------------------------------------------------------------------------
# import
# ----------------------------------------------------------------------------------------------
def _add_import_parser(sub) -> None:
    p = sub.add_parser(
        "import", help="import a pretrained BERT checkpoint into a run directory",
        description="Turn a published BERT checkpoint into a tfmask run directory (encoder, "
                    "vocab.txt, casing, config.json) usable as --init for fine-tuning and by "
                    "export. SOURCE: a Hugging Face folder (config.json + model.safetensors "
                    "or pytorch_model.bin, vocab.txt), a google-research/bert folder "
                    "(bert_config.json, bert_model.ckpt.*, vocab.txt), a keras-hub preset "
                    "folder or name, or hf://ORG/NAME (downloads; needs network).")
    _add_common(p)
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    case = p.add_mutually_exclusive_group()
    case.add_argument("--uncased", dest="lower_case", action="store_const", const=True,
                      help="override the casing the source declares (or that is inferred)")
    case.add_argument("--cased", dest="lower_case", action="store_const", const=False)
    p.add_argument("--activation", choices=["gelu", "gelu_approximate"],
                   help="override the source's GELU form (default: the source's own)")
    p.add_argument("--allow-unknown", action="store_true",
                   help="import even when the source holds tensors tfmask does not know "
                        "(they are listed in import_report.json)")
    p.add_argument("--force", action="store_true", help="replace an encoder already in --out")


def _run_import(args, _) -> int:
    from tfmask.interop import import_checkpoint

    report = import_checkpoint(args.source, args.out, strict=not args.allow_unknown,
                               lower_case=args.lower_case, activation=args.activation,
                               overwrite=args.force)
    encoder = report["encoder"]
    print(f"Imported {report['imported']} tensors from {report['source']} "
          f"({report['format']}): {encoder['num_layers']} layers, hidden {encoder['hidden_dim']}"
          f", {encoder['num_heads']} heads, vocabulary {encoder['vocabulary_size']}, "
          f"{'uncased' if report['lower_case'] else 'cased'}, activation "
          f"{encoder['activation']}, MLM head: {'yes' if report['masked_lm_head'] else 'no'}.")
    for name, why in report["skipped"].items():
        print(f"  skipped {name}: {why}")
    for name in report["initialized_randomly"]:
        print(f"  not in the checkpoint, initialised randomly: {name}")
    for name in report["unknown"]:
        print(f"  unknown, not imported: {name}")
    for note in report["notes"]:
        print(f"  note: {note}")
    out = os.path.abspath(args.out)
    print(f"\nDone. {out}/ holds encoder.keras, vocab.txt, config.json"
          + (", masked_lm.keras" if report["masked_lm_head"] else "")
          + " and import_report.json.")
    return 0


# ----------------------------------------------------------------------------------------------
# finetune
# ----------------------------------------------------------------------------------------------
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
}


def _add_finetune_parser(sub) -> None:
    d, t = FinetuneDataConfig(), FinetuneTrainConfig()
    p = sub.add_parser(
        "finetune", help="fine-tune a NER or sentiment head",
        description="Fine-tune a token-classification (NER) or sequence-classification "
                    "(sentiment) head on a BERT encoder. With no --train/--tfds, uses small "
                    "embedded data sets the project writes itself.")
    _add_common(p)
    tasks = p.add_subparsers(dest="task", required=True, metavar="{ner,sentiment}")
    for task, help_ in (("ner", "named-entity recognition from CoNLL files"),
                        ("sentiment", "sentence classification from TSV/CSV files")):
        tp = tasks.add_parser(task, help=help_, description=_TASK_DESCRIPTIONS[task])
        _add_common(tp)
        src = tp.add_argument_group("data")
        _options(src, (
            "--train", "FILE", "training file" + (" (CoNLL: word ... tag per line)"
                                                  if task == "ner" else " (TSV or CSV)")), (
            "--valid", "FILE", "validation file (picks the best epoch; reported in "
                               "metrics.json)"), (
            "--tfds", "NAME", "a TFDS dataset instead of files: " + (
                "conll2003" if task == "ner" else "glue/sst2 or imdb_reviews")), (
            "--tfds-data-dir", "DIR", "TFDS data_dir"), (
            "--tfds-train-split", "SPLIT", _default("TFDS training split", d.tfds_train_split)), (
            "--tfds-valid-split", "SPLIT",
            _default("TFDS validation split", d.tfds_valid_split)))
        if task == "ner":
            _options(src, (
                "--tag-column", int, _default("column of the tag", f"{d.tag_column}, the last")), (
                "--window-stride", int, _default("pieces between overlapping windows of a long "
                                                 "sentence", "half the window")))
        else:
            _options(src, (
                "--text-column", "COLUMN",
                _default("name or index", "the column named sentence or text")), (
                "--label-column", "COLUMN",
                _default("name or index", "the column named label, else the last")), (
                "--truncation", TRUNCATIONS, _default("which pieces a long text keeps: its "
                                                      "first ones, or the first and the last",
                                                      d.truncation)))
        _options(src, (
            "--seq-len", int, _default("max_sequence_length", d.max_sequence_length)), (
            "--max-train-examples", int, "use only the first N training examples (default: "
                                         "all)"))
        _options(tp.add_argument_group("training"), (
            "--init", "RUN", "a tfmask pretrain or import run (default: random init)"), (
            "--preset", presets.PRESETS, _default("encoder size without --init", t.preset)), (
            "--epochs", int, _default("epochs", t.epochs)), (
            "--batch-size", int, _default("batch size", t.batch_size)), (
            "--learning-rate", float, _default("peak learning rate", t.learning_rate)), (
            "--warmup-steps", int, _default("linear warm-up steps", "10%% of the steps")), (
            "--weight-decay", float, _default("AdamW weight decay", t.weight_decay)), (
            "--layer-decay", float,
            _default("layer-wise learning-rate decay per layer (1 = off)", t.layer_decay)), (
            "--freeze-epochs", int, _default("first epochs train the head only",
                                             t.freeze_epochs)), (
            "--mask-rate", float, _default("masking augmentation: fraction of input pieces "
                                           "replaced by [MASK] while training", t.mask_rate)), (
            "--dropout", float, _default("dropout before the classifier", t.dropout)), (
            "--encoder-dropout", float, _default("dropout inside the encoder", "the rate of "
                                                 "--init's config or the preset")), (
            "--early-stopping", int, "stop after N epochs without a better validation metric "
                                     "(default: off)"), (
            "--seed", int, _default("seed of data order and weights", t.seed)), (
            "--mixed-precision", MIXED_PRECISIONS,
            "a Keras mixed-precision policy (default: float32 throughout)"), (
            "--jit-compile", "switch", "compile train steps with XLA"))
        _add_config_options(tp)


def finetune_experiment(args):
    """The `FinetuneExperiment` a `tfmask finetune` command line asks for: recipe, then flags,
    then `--set` (not yet validated: see `FinetuneExperiment.validate`)."""
    from tfmask.config import FinetuneExperiment, apply_overrides

    experiment = load_recipe(args.recipe) if args.recipe else FinetuneExperiment()
    if args.recipe and experiment.task != args.task:
        raise CliError(f"--recipe {args.recipe!r} is a {experiment.task} recipe, not "
                       f"{args.task}")
    experiment.task = args.task
    _apply_flags(experiment, args, FINETUNE_FLAGS)
    return apply_overrides(experiment, args.set)


def _run_finetune(args, experiment) -> int:
    from tfmask.train.finetuning import finetune

    best = finetune(experiment, args.out)
    keys = ("precision", "recall", "f1") if args.task == "ner" else ("accuracy", "macro_f1")
    print(json.dumps({"epoch": best["epoch"], **{k: round(best[k], 4) for k in keys}}))
    out = os.path.abspath(args.out)
    chart = "per_type_f1.png" if args.task == "ner" else "confusion_matrix.png"
    print(f"\nDone. Results in {out}/\n"
          f"  model:        {out}/model.keras  (labels.txt, vocab.txt)\n"
          f"  metrics:      {out}/metrics.json  (best validation epoch), {out}/{chart}\n"
          f"  curves:       {out}/history.png  ({out}/history.json)\n"
          f"  TensorBoard:  tensorboard --logdir {out}/tensorboard\n"
          f"  evaluate:     tfmask evaluate {args.out} --data FILE")
    return 0


# ----------------------------------------------------------------------------------------------
# evaluate, export, predict
# ----------------------------------------------------------------------------------------------
def _add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score a fine-tuned run on held-out data",
        description="Score a fine-tuning run on a file (read with the run's column options) "
                    "or a TFDS split; prints the metrics as JSON and writes them to "
                    "RUN/evaluations/NAME.json. NER: entity-level precision, recall, f1 "
                    "(seqeval's default mode) and per_type; sentiment: accuracy, macro_f1.")
    _add_common(p)
    p.add_argument("run", metavar="RUN")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="FILE")
    src.add_argument("--tfds", metavar="NAME:SPLIT", help="e.g. conll2003:test, glue/sst2:validation")
    p.add_argument("--tfds-data-dir", metavar="DIR", help="TFDS data_dir")
    p.add_argument("--batch-size", type=int, default=64, metavar="N",
                   help="examples per batch (default: %(default)s)")


def _check_evaluate(args) -> None:
    check_run_dir(args.run, names=("config.json", "model.keras"),
                  what="a finished tfmask finetune run")
    if args.data and not os.path.isfile(args.data):
        raise CliError(f"--data {args.data}: no such file")
    if args.batch_size < 1:
        raise CliError(f"--batch-size must be >= 1, got {args.batch_size}")


def _run_evaluate(args, _) -> int:
    from tfmask.train.evaluation import evaluate

    scores = evaluate(args.run, data=args.data, tfds=args.tfds,
                      tfds_data_dir=args.tfds_data_dir, batch_size=args.batch_size)
    print(json.dumps(scores))
    return 0


def _add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="export a run as SavedModels for TensorFlow Serving",
        description="Write saved_models/NAME/N/ (serving_default = serve_text: strings in, "
                    "tokenized in the graph; serve: ids in) and saved_models/NAME-ids/N/ "
                    "(serve only, core TensorFlow ops) at the next free version N. Works for "
                    "fine-tuned NER and sentiment runs and for pretraining runs (fill-mask).")
    _add_common(p)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--name", required=True, help="model name (the folder under --base-dir)")
    p.add_argument("--base-dir", default="saved_models", metavar="DIR",
                   help="where the model folders are (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=5, metavar="K",
                   help="fill-mask: candidates per [MASK] (default: %(default)s)")


def _check_export(args) -> None:
    check_run_dir(args.run, names=())
    if args.top_k < 1:
        raise CliError(f"--top-k must be >= 1, got {args.top_k}")


def _run_export(args, _) -> int:
    from tfmask.serve.export import export

    result = export(args.run, args.name, args.base_dir, args.top_k)
    audit = result["audit"]["serve_text"]
    print(f"Exported {args.run} ({result['kind']}):\n"
          f"  {result['text']['path']}  signatures serving_default = serve_text, serve\n"
          f"  {result['ids']['path']}  signature serve (core TensorFlow ops only)\n"
          f"  serve_text needs tensorflow-text ops {audit['tensorflow_text_ops']}: "
          f"TF Serving >= {audit['min_tf_serving']}; op audit in "
          f"{result['text']['path']}/assets.extra/op_audit.json")
    print(json.dumps({k: v for k, v in result.items() if k != "audit"}))
    return 0


def _add_predict_parser(sub) -> None:
    p = sub.add_parser(
        "predict", help="run an exported model on texts (as TF Serving would)",
        description="Load saved_models/NAME[/VERSION] with tf.saved_model.load (importing only "
                    "tensorflow and tensorflow_text), call serve_text, print one JSON object "
                    "per text.")
    _add_common(p)
    p.add_argument("export", metavar="EXPORT", help="saved_models/NAME or saved_models/NAME/N")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", help="a file with one text a line")
    p.add_argument("--rest", action="store_true",
                   help="print the body TF Serving's REST API returns for these texts "
                        "(one row-format request) instead of one object per text")


def _check_predict(args) -> None:
    if not os.path.isdir(args.export):
        raise CliError(f"{args.export}: no such export")
    if args.file and not os.path.isfile(args.file):
        raise CliError(f"--file {args.file}: no such file")
    if not args.texts and not args.file:
        raise CliError("give texts to predict, or --file FILE (one text a line)")


def _run_predict(args, _) -> int:
    from tfmask.serve import predict

    return predict.main(args.export, args.texts, args.file, rest=args.rest)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tfmask", description="BERT masked-language-model pretraining and fine-tuning "
                                   "with TensorFlow and Keras.")
    parser.add_argument("--version", action="version", version=f"tfmask {tfmask.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show TensorFlow's start-up lines and full stack traces")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_pretrain_parser, _add_import_parser, _add_finetune_parser,
                _add_evaluate_parser, _add_export_parser, _add_predict_parser):
        add(sub)
    return parser


#: command -> (check: arguments in, what `run` needs out, no TensorFlow; run)
_COMMANDS = {
    "pretrain": (_validated(pretrain_experiment), _run_pretrain),
    "import": (lambda args: _check_out(args.out), _run_import),
    "finetune": (_validated(finetune_experiment), _run_finetune),
    "evaluate": (_check_evaluate, _run_evaluate),
    "export": (_check_export, _run_export),
    "predict": (_check_predict, _run_predict),
}

#: What TensorFlow's native libraries print while `import tensorflow` runs, before their
#: logging is set up (so TF_CPP_MIN_LOG_LEVEL cannot hide it), once per library that carries
#: its own copy of the logger: absl's notice, then INFO and WARNING lines (oneDNN's notice,
#: "Could not find cuda drivers", CPU instruction sets). ERROR lines are kept.
_IMPORT_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)|"
                           r"[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines kept out of the user's way.

    TF_CPP_MIN_LOG_LEVEL=3 (unless the user set it) hides the lines TensorFlow logs once it
    runs (cuInit failures on a machine without a GPU, oneDNN's int64 notice); the lines its
    libraries print while loading ignore it, so stderr goes to a temporary file during the
    import and all but those lines are printed afterwards."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _IMPORT_NOISE.match(line)))


#: What a run directory holds before its first training step (configuration, vocabulary,
#: labels, the embedded data written for it).
_BEFORE_TRAINING = {"config.json", "vocab.txt", "labels.txt", "embedded_corpus",
                    "embedded_data"}


@contextlib.contextmanager
def _removed_on_failure(out: str | None):
    """Removes `out` (and the parents made for it) when the command fails, if the command
    created it and it holds only `_BEFORE_TRAINING` files: a folder that existed before, or
    one with a checkpoint, logs or a model in it, is left as it is."""
    created = []  # `out` and each missing parent, innermost first
    path = os.path.abspath(out) if out is not None else None
    while path and not os.path.lexists(path):
        created.append(path)
        path = os.path.dirname(path)
    try:
        yield
    except BaseException:
        if created and os.path.isdir(created[0]) and (
                set(os.listdir(created[0])) <= _BEFORE_TRAINING):
            shutil.rmtree(created[0], ignore_errors=True)
            for parent in created[1:]:
                with contextlib.suppress(OSError):  # not empty: something else is there now
                    os.rmdir(parent)
        raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tfmask` console script."""
    args = build_parser().parse_args(argv)
    check, run = _COMMANDS[args.command]
    try:
        prepared = check(args)
        if not args.debug:
            _import_tensorflow_quietly()
        with _removed_on_failure(getattr(args, "out", None)):
            return run(args, prepared)
    except KeyboardInterrupt:
        print("tfmask: interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, OSError) as e:
        if args.debug:
            raise
        print(f"tfmask {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
