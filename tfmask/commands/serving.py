"""`tfmask evaluate`, `export` and `predict`: a finished run scored, exported and called."""

from __future__ import annotations

import json
import os

from tfmask.commands import CliError, add_common
from tfmask.validation import check_run_dir

def _add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score a fine-tuned run on held-out data",
        description="Score a fine-tuning run on a file (read with the run's column options) "
                    "or a TFDS split; prints the metrics as JSON and writes them to "
                    "RUN/evaluations/NAME.json. NER: entity-level precision, recall, f1 "
                    "(seqeval's default mode) and per_type; sentiment: accuracy, macro_f1.")
    add_common(p)
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
    add_common(p)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--name", required=True, help="model name (the folder under --base-dir)")
    p.add_argument("--base-dir", default="saved_models", metavar="DIR",
                   help="where the model folders are (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=5, metavar="K",
                   help="fill-mask: candidates per [MASK] (default: %(default)s)")


def _check_export(args) -> None:
    from tfmask.serve.publishing import name_problem

    check_run_dir(args.run, names=())
    if name_problem(args.name):
        raise CliError(name_problem(args.name))
    if os.path.exists(args.base_dir) and not os.path.isdir(args.base_dir):
        raise CliError(f"--base-dir {args.base_dir}: not a directory")
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
                    "per text. A sentence-pair model takes each pair as TEXT<TAB>TEXT_PAIR "
                    "(split at the first tab; in bash $'first text\\tsecond text').")
    add_common(p)
    p.add_argument("export", metavar="EXPORT", help="saved_models/NAME or saved_models/NAME/N")
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="a text (a pair model: TEXT<TAB>TEXT_PAIR)")
    p.add_argument("--file", help="a file with one text (or TEXT<TAB>TEXT_PAIR) a line")
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


COMMANDS = {
    "evaluate": (_add_evaluate_parser, _check_evaluate, _run_evaluate),
    "export": (_add_export_parser, _check_export, _run_export),
    "predict": (_add_predict_parser, _check_predict, _run_predict),
}
