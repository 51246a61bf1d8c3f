"""`tfmask pretrain`: masked-language-model pretraining."""

from __future__ import annotations

import json
import os

from tfmask import presets
from tfmask.commands import (CliError, add_common, add_config_options, add_options, apply_flags,
                             validated, with_default)
from tfmask.config import (MASKING_STRATEGIES, PRECISIONS, PACKINGS, PRETRAIN_FLAGS,
                           STRATEGIES, DataConfig, MaskingConfig, TokenizerConfig, TrainConfig,
                           load_recipe)

def _add_pretrain_parser(sub) -> None:
    d, tok, m, t = DataConfig(), TokenizerConfig(), MaskingConfig(), TrainConfig()
    p = sub.add_parser(
        "pretrain", help="pretrain a BERT encoder with masked-language modelling",
        description="Pretrain a BERT encoder with dynamic MLM masking done in the tf.data "
                    "graph. With no --corpus, trains on an embedded corpus the project writes "
                    "itself. Re-running the same command resumes from the last checkpoint.")
    add_common(p)
    src = p.add_argument_group("data")
    src.add_argument("--corpus", nargs="+", metavar="GLOB",
                     help="text files (one sentence/paragraph a line, blank line between "
                          "documents) (default: the embedded corpus)")
    src.add_argument("--eval-corpus", nargs="+", metavar="GLOB",
                     help="held-out text for eval loss/accuracy at each checkpoint")
    add_options(src, (
        "--eval-holdout", float,
        with_default("without --eval-corpus, hold out this fraction of lines", d.eval_holdout)), (
        "--tfds", "NAME:SPLIT",
        "a TFDS text dataset instead of files, e.g. wikipedia/20230601.en:train"), (
        "--text-key", "KEY", with_default("TFDS feature holding the text", d.tfds_text_key)), (
        "--tfds-data-dir", "DIR", "TFDS data_dir"), (
        "--seq-len", int, with_default("max_sequence_length", d.max_sequence_length)), (
        "--packing", PACKINGS, with_default("full_sentences packs consecutive lines of a document "
                                        "into a sequence; one_line makes one of each line",
                                        d.packing)), (
        "--skip-bad-lines", "switch", "skip corpus lines that are not UTF-8 or over 1 MiB "
                                      "(counted in the log) instead of stopping at the first"))
    vocab = p.add_argument_group("vocabulary")
    add_options(vocab, (
        "--vocab", "FILE", "a vocab.txt to use (default: learn one from the corpus)"), (
        "--vocab-size", int, with_default("size of the learned vocabulary", tok.vocabulary_size)))
    vocab.add_argument("--cased", action="store_true",
                       help="keep case and accents (default: lower-case, accents stripped)")
    add_options(p.add_argument_group("masking"), (
        "--masking", "STRATEGY",
        with_default(f"one of {', '.join(MASKING_STRATEGIES)}, or a mixture drawn per "
                     "sequence such as span:0.5,random:0.5", m.strategy)), (
        "--selection-rate", float,
        with_default("fraction of word pieces selected for prediction (measured after the "
                     "--max-predictions cap)", m.selection_rate)), (
        "--final-selection-rate", float,
        "change the selection rate linearly to this by the last step (e.g. 0.4 -> 0.15) "
        "(default: constant)"), (
        "--max-predictions", int, with_default("prediction slots per sequence", m.max_predictions)), (
        "--mask-token-rate", float,
        with_default("fraction of the selected pieces replaced by [MASK]", m.mask_token_rate)), (
        "--random-token-rate", float,
        with_default("fraction replaced by a random token (the rest stay)", m.random_token_rate)), (
        "--gazetteer", "FILE", "entity masking: entities, one a line (default: the NER tags of "
                               "a CoNLL corpus, else runs of capitalised words)"), (
        "--entity-priority", float,
        with_default("entity masking: log-odds of an entity over a word", m.entity_priority)), (
        "--keyword-strength", float,
        with_default("keyword masking: selection odds ~ TF-IDF^X (0: uniform)",
                     m.keyword_strength)), (
        "--pmi-ngrams", int,
        with_default("pmi masking: n-grams of highest PMI kept", m.pmi_max_ngrams)), (
        "--pmi-min-count", int,
        with_default("pmi masking: fewest occurrences of a kept n-gram", m.pmi_min_count)))
    rates = (f"by preset, {presets.default_learning_rate('bert_tiny')} for bert_tiny ... "
             f"{presets.default_learning_rate('bert_base')} for bert_base")
    add_options(p.add_argument_group("training"), (
        "--init", "RUN", "continue MLM from a tfmask pretrain or import run: its vocabulary, "
                         "casing, encoder and MLM head (default: a random --preset encoder)"), (
        "--head-warmup-steps", int, with_default(
            "with --init from a run without an MLM head: steps training the fresh head alone "
            "(encoder frozen, lr 1e-3) first; 0: none", t.head_warmup_steps)), (
        "--preset", presets.PRESETS, with_default("encoder size without --init", t.preset)), (
        "--batch-size", int, with_default("global batch size", t.batch_size)), (
        "--steps", int, with_default("training steps", t.steps)), (
        "--save-every", int, with_default("checkpoint interval in steps", t.save_every)), (
        "--eval-steps", int, with_default("eval batches per checkpoint", t.eval_steps)), (
        "--learning-rate", float, with_default("peak learning rate", rates)), (
        "--warmup-steps", int, with_default("linear warm-up steps", "10%% of --steps")), (
        "--weight-decay", float, with_default("AdamW weight decay", t.weight_decay)), (
        "--seed", int, with_default("seed of data order, masks and weights", t.seed)), (
        "--strategy", STRATEGIES, with_default("tf.distribute strategy; auto: MirroredStrategy "
                                           "over the GPUs if there are any, else one device",
                                           t.strategy)), (
        "--precision", PRECISIONS, with_default(
            "float32; mixed_bfloat16; mixed_float16 (loss scaling); auto: bfloat16 on "
            "a TPU, a GPU of compute capability >= 8.0 or a CPU with AMX, float16 on "
            "older GPUs, else float32 (config.json records the choice)", t.precision)), (
        "--jit-compile", "switch", "compile train steps with XLA"), (
        "--deterministic", "switch", "enable TF op determinism (bit-identical resumed runs)"))
    add_config_options(p)


def pretrain_experiment(args):
    """The `Experiment` a `tfmask pretrain` command line asks for: recipe, then flags, then
    `--set` (not yet validated: see `Experiment.validate`)."""
    from tfmask.config import Experiment, apply_overrides

    experiment = load_recipe(args.recipe, Experiment) if args.recipe else Experiment()
    if args.init:  # the run's own vocabulary, casing and encoder: no flag may choose others
        given = [flag for flag, value in (("--vocab", args.vocab), ("--vocab-size",
                 args.vocab_size), ("--cased", args.cased), ("--preset", args.preset)) if value]
        if given:
            raise CliError(f"{given[0]} conflicts with --init {args.init}: a continued run "
                           "keeps the vocabulary, casing and encoder of the run it starts from")
    apply_flags(experiment, args, PRETRAIN_FLAGS)
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


def _check_pretrain(args):
    """The validated experiment, and its corpus files read once (`text_files.check_corpus`):
    a bad line is answered before TensorFlow loads."""
    from tfmask.text.text_files import check_corpus

    experiment = validated(pretrain_experiment)(args)
    check_corpus(experiment.data)
    return experiment


COMMANDS = {"pretrain": (_add_pretrain_parser, _check_pretrain, _run_pretrain)}
