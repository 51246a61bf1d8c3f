"""The `tfmask` command line. The only module that reads `sys.argv` or the environment."""

from __future__ import annotations

import argparse
import json
import os
import sys

from tfmask import presets


class CliError(Exception):
    """An error to print as one line, without a stack trace."""


def _add_pretrain_parser(sub) -> None:
    p = sub.add_parser(
        "pretrain", help="pretrain a BERT encoder with masked-language modelling",
        description="Pretrain a BERT encoder with dynamic MLM masking done in the tf.data "
                    "graph. With no --corpus, trains on an embedded corpus the project writes "
                    "itself. Re-running the same command resumes from the last checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_argument_group("data")
    src.add_argument("--corpus", nargs="+", metavar="GLOB",
                     help="text files (one sentence/paragraph a line, blank line between "
                          "documents); default: the embedded corpus")
    src.add_argument("--eval-corpus", nargs="+", metavar="GLOB",
                     help="held-out text for eval loss/accuracy at each checkpoint")
    src.add_argument("--eval-holdout", type=float, metavar="FRACTION",
                     help="without --eval-corpus, hold out this fraction of lines (default "
                          "0.01)")
    src.add_argument("--tfds", metavar="NAME:SPLIT",
                     help="a TFDS text dataset instead of files, e.g. wikipedia/20230601.en:train")
    src.add_argument("--text-key", help="TFDS feature holding the text (default: text)")
    src.add_argument("--tfds-data-dir", help="TFDS data_dir")
    src.add_argument("--seq-len", type=int, help="max_sequence_length (default 128)")
    src.add_argument("--packing", choices=["full_sentences", "one_line"])
    tok = p.add_argument_group("vocabulary")
    tok.add_argument("--vocab", metavar="FILE", help="a vocab.txt to use instead of learning one")
    tok.add_argument("--vocab-size", type=int, help="size of the learned vocabulary "
                                                    "(default 8000)")
    tok.add_argument("--cased", action="store_true", help="keep case and accents")
    msk = p.add_argument_group("masking")
    msk.add_argument("--masking", choices=["random", "whole_word", "span"])
    msk.add_argument("--selection-rate", type=float, help="default 0.15")
    msk.add_argument("--max-predictions", type=int, help="default 20")
    msk.add_argument("--mask-token-rate", type=float, help="default 0.8")
    msk.add_argument("--random-token-rate", type=float, help="default 0.1")
    tr = p.add_argument_group("training")
    tr.add_argument("--preset", choices=presets.PRESETS, help="default bert_tiny")
    tr.add_argument("--batch-size", type=int, help="global batch size (default 32)")
    tr.add_argument("--steps", type=int, help="training steps (default 1000)")
    tr.add_argument("--save-every", type=int, help="checkpoint interval in steps (default 100)")
    tr.add_argument("--eval-steps", type=int, help="eval batches per checkpoint (default 20)")
    tr.add_argument("--learning-rate", type=float, help="peak learning rate (default: by preset, 2e-3 for "
                                                         "bert_tiny ... 1e-4 for bert_base)")
    tr.add_argument("--warmup-steps", type=int, help="default 10%% of --steps")
    tr.add_argument("--weight-decay", type=float, help="default 0.01")
    tr.add_argument("--seed", type=int, help="default 0")
    tr.add_argument("--strategy", choices=["auto", "default", "mirrored", "multi_worker", "tpu"])
    tr.add_argument("--mixed-precision", choices=["mixed_float16", "mixed_bfloat16"])
    tr.add_argument("--jit-compile", action="store_true", help="compile train steps with XLA")
    tr.add_argument("--deterministic", action="store_true",
                    help="enable TF op determinism (bit-identical resumed runs)")
    tr.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="override any config field, e.g. --set train.clipnorm=0.5")
    p.add_argument("--recipe", metavar="FILE",
                   help="a recipe (pipelines/*.py defining config()); flags override it")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")


#: CLI flag attribute -> (config section, field)
_PRETRAIN_FLAGS = {
    "corpus": ("data", "corpus"), "eval_corpus": ("data", "eval_corpus"),
    "eval_holdout": ("data", "eval_holdout"), "tfds": ("data", "tfds"),
    "text_key": ("data", "tfds_text_key"), "tfds_data_dir": ("data", "tfds_data_dir"),
    "seq_len": ("data", "max_sequence_length"), "packing": ("data", "packing"),
    "vocab": ("tokenizer", "vocab"), "vocab_size": ("tokenizer", "vocabulary_size"),
    "masking": ("masking", "strategy"), "selection_rate": ("masking", "selection_rate"),
    "max_predictions": ("masking", "max_predictions"),
    "mask_token_rate": ("masking", "mask_token_rate"),
    "random_token_rate": ("masking", "random_token_rate"),
    "preset": ("train", "preset"), "batch_size": ("train", "batch_size"),
    "steps": ("train", "steps"), "save_every": ("train", "save_every"),
    "eval_steps": ("train", "eval_steps"), "learning_rate": ("train", "learning_rate"),
    "warmup_steps": ("train", "warmup_steps"), "weight_decay": ("train", "weight_decay"),
    "seed": ("train", "seed"), "strategy": ("train", "strategy"),
    "mixed_precision": ("train", "mixed_precision"),
}


def _apply_flags(experiment, args, table: dict) -> None:
    """Copies every flag that was given onto its config field (flags override a recipe)."""
    for flag, (section, field) in table.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(getattr(experiment, section), field, value)


def load_recipe(path: str):
    """Runs a recipe file's `config()` and returns what it builds."""
    import importlib.util

    if not os.path.isfile(path):
        raise CliError(f"--recipe {path!r}: no such file")
    spec = importlib.util.spec_from_file_location("tfmask_recipe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "config"):
        raise CliError(f"--recipe {path!r} defines no config() function")
    return module.config()


def pretrain_experiment(args):
    """The `Experiment` a `tfmask pretrain` command line asks for: recipe, then flags."""
    from tfmask.config import Experiment, apply_overrides

    experiment = load_recipe(args.recipe) if args.recipe else Experiment()
    _apply_flags(experiment, args, _PRETRAIN_FLAGS)
    if args.cased:
        experiment.tokenizer.lower_case = False
    if args.jit_compile:
        experiment.train.jit_compile = True
    if args.deterministic:
        experiment.train.deterministic = True
    if experiment.train.steps % experiment.train.save_every and args.save_every is None:
        # --steps that is not a multiple of the (unasked-for) interval: use the largest
        # interval that divides it and is no longer than the one configured.
        experiment.train.save_every = _largest_divisor_at_most(
            experiment.train.steps, experiment.train.save_every)
    return apply_overrides(experiment, args.set)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def _run_pretrain(args) -> int:
    from tfmask.train.pretraining import pretrain

    experiment = pretrain_experiment(args)
    summary = pretrain(experiment, args.out)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                      for k, v in summary.items()}))
    out = os.path.abspath(args.out)
    print(f"\nDone. Results in {out}/\n"
          f"  encoder:      {out}/encoder.keras\n"
          f"  curves:       {out}/history.png  ({out}/history.json)\n"
          f"  TensorBoard:  tensorboard --logdir {out}/tensorboard")
    return 0


def _add_import_parser(sub) -> None:
    p = sub.add_parser(
        "import", help="import a pretrained BERT checkpoint into a run directory",
        description="Turn a published BERT checkpoint into a tfmask run directory (encoder, "
                    "vocab.txt, casing, config.json) usable as --init for fine-tuning and by "
                    "export. SOURCE: a Hugging Face folder (config.json + model.safetensors "
                    "or pytorch_model.bin, vocab.txt), a google-research/bert folder "
                    "(bert_config.json, bert_model.ckpt.*, vocab.txt), a keras-hub preset "
                    "folder or name, or hf://ORG/NAME (downloads; needs network).")
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


def _run_import(args) -> int:
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


def _add_finetune_parser(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a NER or sentiment head",
        description="Fine-tune a token-classification (NER) or sequence-classification "
                    "(sentiment) head on a BERT encoder. With no --train/--tfds, uses small "
                    "embedded data sets the project writes itself.")
    tasks = p.add_subparsers(dest="task", required=True)
    for task, help_ in (("ner", "named-entity recognition from CoNLL files"),
                        ("sentiment", "sentence classification from TSV/CSV files")):
        t = tasks.add_parser(task, help=help_,
                             formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        src = t.add_argument_group("data")
        src.add_argument("--train", metavar="FILE",
                         help="training file" + (" (CoNLL: word ... tag per line)"
                                                 if task == "ner" else " (TSV or CSV)"))
        src.add_argument("--valid", metavar="FILE", help="validation file (picks the best "
                                                         "epoch; reported in metrics.json)")
        src.add_argument("--tfds", metavar="NAME",
                         help="a TFDS dataset instead of files: " + (
                             "conll2003" if task == "ner" else "glue/sst2 or imdb_reviews"))
        src.add_argument("--tfds-data-dir")
        src.add_argument("--tfds-train-split", help="default train")
        src.add_argument("--tfds-valid-split", help="default validation")
        if task == "ner":
            src.add_argument("--tag-column", type=int, help="column of the tag (default -1, "
                                                            "the last)")
            src.add_argument("--window-stride", type=int,
                             help="pieces between overlapping windows of a long sentence "
                                  "(default half the window)")
        else:
            src.add_argument("--text-column", help="name or index (default: the column named "
                                                   "sentence or text)")
            src.add_argument("--label-column", help="name or index (default: label)")
            src.add_argument("--truncation", choices=["head", "head_tail"])
        src.add_argument("--seq-len", type=int, help="max_sequence_length (default 128)")
        src.add_argument("--max-train-examples", type=int,
                         help="use only the first N training examples")
        tr = t.add_argument_group("training")
        tr.add_argument("--init", metavar="RUN",
                        help="a tfmask pretrain or import run; default: random init")
        tr.add_argument("--preset", choices=presets.PRESETS,
                        help="encoder size without --init (default bert_tiny)")
        tr.add_argument("--epochs", type=int, help="default 3")
        tr.add_argument("--batch-size", type=int, help="default 32")
        tr.add_argument("--learning-rate", type=float, help="peak rate (default 5e-5)")
        tr.add_argument("--warmup-steps", type=int, help="default 10%% of the steps")
        tr.add_argument("--weight-decay", type=float, help="default 0.01")
        tr.add_argument("--layer-decay", type=float,
                        help="layer-wise learning-rate decay per layer (default 1 = off)")
        tr.add_argument("--freeze-epochs", type=int,
                        help="first epochs train the head only (default 0)")
        tr.add_argument("--mask-rate", type=float,
                        help="masking augmentation: fraction of input pieces replaced by "
                             "[MASK] while training (default 0)")
        tr.add_argument("--dropout", type=float, help="before the classifier (default 0.1)")
        tr.add_argument("--encoder-dropout", type=float,
                        help="dropout inside the encoder (default: the rate of --init's "
                             "config or the preset)")
        tr.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without a better validation metric")
        tr.add_argument("--seed", type=int)
        tr.add_argument("--mixed-precision", choices=["mixed_float16", "mixed_bfloat16"])
        tr.add_argument("--jit-compile", action="store_true")
        tr.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override any config field, e.g. --set train.clipnorm=0.5")
        t.add_argument("--recipe", metavar="FILE",
                       help="a recipe (pipelines/*.py defining config()); flags override it")
        t.add_argument("--out", required=True, metavar="DIR", help="run directory")


#: CLI flag attribute -> (config section, field) for `tfmask finetune`.
_FINETUNE_FLAGS = {
    "train": ("data", "train"), "valid": ("data", "valid"), "tfds": ("data", "tfds"),
    "tfds_data_dir": ("data", "tfds_data_dir"),
    "tfds_train_split": ("data", "tfds_train_split"),
    "tfds_valid_split": ("data", "tfds_valid_split"), "tag_column": ("data", "tag_column"),
    "window_stride": ("data", "window_stride"), "text_column": ("data", "text_column"),
    "label_column": ("data", "label_column"), "truncation": ("data", "truncation"),
    "seq_len": ("data", "max_sequence_length"),
    "max_train_examples": ("data", "max_train_examples"),
    "init": ("train", "init"), "preset": ("train", "preset"), "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"), "learning_rate": ("train", "learning_rate"),
    "warmup_steps": ("train", "warmup_steps"), "weight_decay": ("train", "weight_decay"),
    "layer_decay": ("train", "layer_decay"), "freeze_epochs": ("train", "freeze_epochs"),
    "mask_rate": ("train", "mask_rate"), "dropout": ("train", "dropout"),
    "encoder_dropout": ("train", "encoder_dropout"),
    "early_stopping": ("train", "early_stopping_patience"), "seed": ("train", "seed"),
    "mixed_precision": ("train", "mixed_precision"),
}


def finetune_experiment(args):
    """The `FinetuneExperiment` a `tfmask finetune` command line asks for: recipe, then flags."""
    from tfmask.config import FinetuneExperiment, apply_overrides

    experiment = load_recipe(args.recipe) if args.recipe else FinetuneExperiment()
    if args.recipe and experiment.task != args.task:
        raise CliError(f"--recipe {args.recipe!r} is a {experiment.task} recipe, not "
                       f"{args.task}")
    experiment.task = args.task
    _apply_flags(experiment, _Present(args), _FINETUNE_FLAGS)
    if args.jit_compile:
        experiment.train.jit_compile = True
    return apply_overrides(experiment, args.set)


class _Present:
    """`args` with the flags a task's parser does not define read as not given."""

    def __init__(self, args):
        self._args = args

    def __getattr__(self, name):
        return getattr(self._args, name, None)


def _run_finetune(args) -> int:
    from tfmask.train.finetuning import finetune

    best = finetune(finetune_experiment(args), args.out)
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


def _add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score a fine-tuned run on held-out data",
        description="Score a fine-tuning run on a file (read with the run's column options) "
                    "or a TFDS split; prints the metrics as JSON and writes them to "
                    "RUN/evaluations/NAME.json. NER: entity-level precision, recall, f1 "
                    "(seqeval's default mode) and per_type; sentiment: accuracy, macro_f1.")
    p.add_argument("run", metavar="RUN")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="FILE")
    src.add_argument("--tfds", metavar="NAME:SPLIT", help="e.g. conll2003:test, glue/sst2:validation")
    p.add_argument("--tfds-data-dir")
    p.add_argument("--batch-size", type=int, default=64)


def _run_evaluate(args) -> int:
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
    p.add_argument("run", metavar="RUN")
    p.add_argument("--name", required=True, help="model name (the folder under --base-dir)")
    p.add_argument("--base-dir", default="saved_models")
    p.add_argument("--top-k", type=int, default=5, help="fill-mask: candidates per [MASK]")


def _run_export(args) -> int:
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
    p.add_argument("export", metavar="EXPORT", help="saved_models/NAME or saved_models/NAME/N")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", help="a file with one text a line")


def _run_predict(args) -> int:
    from tfmask.serve import predict

    return predict.main(args.export, args.texts, args.file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfmask", description="BERT masked-language-model pretraining and fine-tuning "
                                   "with TensorFlow and Keras.")
    parser.add_argument("--debug", action="store_true", help="show full stack traces")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_pretrain_parser(sub)
    _add_import_parser(sub)
    _add_finetune_parser(sub)
    _add_evaluate_parser(sub)
    _add_export_parser(sub)
    _add_predict_parser(sub)
    return parser


_COMMANDS = {"pretrain": _run_pretrain, "import": _run_import, "finetune": _run_finetune,
             "evaluate": _run_evaluate, "export": _run_export, "predict": _run_predict}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tfmask` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("tfmask: interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, FileNotFoundError, OSError) as e:
        if args.debug:
            raise
        print(f"tfmask {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
