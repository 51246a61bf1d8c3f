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
    for flag, (section, field) in _PRETRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(getattr(experiment, section), field, value)
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
    from tfmask.pretraining import pretrain

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
    from tfmask.checkpoints import import_checkpoint

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfmask", description="BERT masked-language-model pretraining and fine-tuning "
                                   "with TensorFlow and Keras.")
    parser.add_argument("--debug", action="store_true", help="show full stack traces")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_pretrain_parser(sub)
    _add_import_parser(sub)
    return parser


_COMMANDS = {"pretrain": _run_pretrain, "import": _run_import}


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
