"""`pretrain()`: raw text to a pretrained encoder in a run directory.

A run directory holds

    config.json        the full resolved `Experiment`
    vocab.txt          the WordPiece vocabulary
    checkpoints/       `BackupAndRestore` state: re-running the same command resumes here
    encoder.keras      the trained `BertEncoder` (what fine-tuning and export load)
    masked_lm.keras    encoder + MLM head (fill-mask)
    history.json       one record per checkpoint interval (see `HistoryRecorder`)
    history.png        loss and masked-accuracy curves
    tensorboard/       TensorBoard logs
"""

from __future__ import annotations

import os
import sys

import keras
import tensorflow as tf

from tfmask import data, presets, tokenization, training
from tfmask.config import (  # noqa: F401  RunConflictError: raised here, importable here
    DataConfig, Experiment, RunConflictError, claim_run_dir)
from tfmask.encoder import BertEncoder
from tfmask.heads import MaskedLM
from tfmask.runs import load_encoder  # noqa: F401  (re-exported: pretraining's output)


EMBEDDED_EVAL_HOLDOUT = 0.05


def resolve_corpus(experiment: Experiment, run_dir: str) -> None:
    """Fills `data.corpus` with the embedded corpus when no text source is given."""
    if experiment.data.corpus or experiment.data.tfds:
        return
    from tfmask import embedded

    directory = os.path.join(run_dir, "embedded_corpus")
    embedded.write_corpus(directory, seed=0)
    experiment.data.corpus = [os.path.join(directory, "*.txt")]
    if experiment.data.eval_holdout == DataConfig.eval_holdout:
        # 1% of a 300 KB corpus is a handful of sequences: hold out 5% for a stable curve.
        experiment.data.eval_holdout = EMBEDDED_EVAL_HOLDOUT


def training_lines(experiment: Experiment) -> tf.data.Dataset:
    """The lines a vocabulary may be learned from: training text only, held-out lines excluded."""
    d = experiment.data
    if d.tfds:
        lines = data.tfds_lines(d.tfds, d.tfds_text_key, d.tfds_data_dir)
    else:
        lines = tf.data.TextLineDataset(data.expand_globs(d.corpus))
    if d.holdout_active:
        lines = lines.filter(data.holdout_filter(d.eval_holdout, keep_heldout=False))
    return lines.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)


def prepare_vocabulary(experiment: Experiment, run_dir: str) -> tokenization.WordPieceTokenizer:
    """Loads `RUN/vocab.txt` (resume), the given `--vocab`, or learns one from the corpus."""
    path = os.path.join(run_dir, "vocab.txt")
    lower = experiment.tokenizer.lower_case
    if os.path.exists(path):
        vocab = tokenization.load_vocabulary(path)
    elif experiment.tokenizer.vocab:
        vocab = tokenization.load_vocabulary(experiment.tokenizer.vocab)
    else:
        print(f"Learning a {experiment.tokenizer.vocabulary_size}-token WordPiece vocabulary "
              "from the corpus...", flush=True)
        vocab = tokenization.learn_vocabulary(
            training_lines(experiment), experiment.tokenizer.vocabulary_size, lower)
    if not os.path.exists(path):
        tokenization.save_vocabulary(vocab, path)
    return tokenization.WordPieceTokenizer(vocab, lower_case=lower)


def dataset_kwargs(experiment: Experiment, tokenizer) -> dict:
    """Arguments of `data.pretraining_dataset` shared by the training and eval pipelines."""
    d, m = experiment.data, experiment.masking
    return dict(
        tokenizer=tokenizer, batch_size=experiment.train.batch_size,
        max_sequence_length=d.max_sequence_length, packing_mode=d.packing,
        masking_strategy=m.strategy, selection_rate=m.selection_rate,
        max_predictions=m.max_predictions, mask_token_rate=m.mask_token_rate,
        random_token_rate=m.random_token_rate, seed=experiment.train.seed,
        shuffle_buffer=d.shuffle_buffer)


def source_kwargs(experiment: Experiment, eval_split: bool) -> dict:
    d = experiment.data
    if eval_split and d.eval_corpus:
        return {"files": data.expand_globs(d.eval_corpus)}
    source = ({"tfds_name": d.tfds, "tfds_text_key": d.tfds_text_key,
               "tfds_data_dir": d.tfds_data_dir} if d.tfds
              else {"files": data.expand_globs(d.corpus)})
    if d.holdout_active:
        source.update(holdout=d.eval_holdout, heldout_split=eval_split)
    return source


def eval_dataset(experiment: Experiment, tokenizer) -> tuple[tf.data.Dataset | None, int]:
    """The same eval batches at every checkpoint: (dataset, number of batches)."""
    if not experiment.data.eval_corpus and not experiment.data.holdout_active:
        return None, 0
    ds = data.pretraining_dataset(**dataset_kwargs(experiment, tokenizer),
                                  **source_kwargs(experiment, eval_split=True), training=False)
    ds = ds.take(experiment.train.eval_steps).cache()
    count = sum(1 for _ in ds)
    if count == 0:
        raise ValueError(
            "the evaluation text yields no sequence (empty --eval-corpus, or no line held "
            "out); give a larger --eval-corpus or --eval-holdout, or --eval-holdout 0 to "
            "train without evaluation")
    return ds.repeat(), count


def pretrain(experiment: Experiment, run_dir: str, strategy=None, verbose=None) -> dict:
    """Pretrains (or resumes pretraining) a BERT encoder with MLM and writes `run_dir`.

    Args:
      experiment: the configuration. `encoder` is derived from `train.preset`, the vocabulary
        and `data.max_sequence_length`.
      run_dir: output directory. If it holds a run with the same configuration, training
        resumes from its last checkpoint; a different configuration is an error.
      strategy: a `tf.distribute.Strategy`; default chosen by `train.strategy`.
      verbose: Keras `fit` verbosity (default: a progress bar on a terminal, a line per
        checkpoint interval otherwise).

    Returns:
      The last `history.json` record plus `run_dir`.
    """
    t = experiment.train
    if t.steps % t.save_every:
        raise ValueError(f"--steps ({t.steps}) must be a multiple of --save-every "
                         f"({t.save_every}): one Keras epoch is one checkpoint interval")
    os.makedirs(run_dir, exist_ok=True)
    resolve_corpus(experiment, run_dir)
    tokenizer = prepare_vocabulary(experiment, run_dir)
    experiment.tokenizer.vocabulary_size = tokenizer.vocabulary_size
    if t.learning_rate is None:
        t.learning_rate = presets.default_learning_rate(t.preset)
    experiment.encoder = presets.encoder_config(
        t.preset, tokenizer.vocabulary_size,
        max_sequence_length=max(512, experiment.data.max_sequence_length),
        dropout=experiment.encoder.dropout)

    claim_run_dir(experiment, run_dir)

    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    if t.mixed_precision:
        keras.mixed_precision.set_global_policy(t.mixed_precision)
    strategy = strategy or training.choose_strategy(t.strategy)
    training.quiet_unused_pooler_warning()

    backup_dir = os.path.join(run_dir, "checkpoints")
    start_step = training.resumed_epoch(backup_dir) * t.save_every
    if start_step:
        print(f"Resuming {run_dir} from step {start_step} of {t.steps}.", flush=True)
    train_ds = data.pretraining_dataset(**dataset_kwargs(experiment, tokenizer),
                                        **source_kwargs(experiment, eval_split=False),
                                        training=True, start_step=start_step)
    eval_ds, eval_batches = eval_dataset(experiment, tokenizer)

    with strategy.scope():
        encoder = BertEncoder.from_encoder_config(experiment.encoder)
        model = MaskedLM(encoder)
        optimizer = training.build_optimizer(
            t.learning_rate, t.steps, t.warmup_steps, t.weight_decay, t.clipnorm,
            t.adam_epsilon)
        training.compile_masked_lm(model, optimizer, t.jit_compile, t.steps_per_execution)

    # The history row of an interval is written before the checkpoint that marks the
    # interval done: a kill between the two then only repeats the interval, never loses a row.
    callbacks = [
        training.HistoryRecorder(run_dir, t.save_every,
                                 t.batch_size * experiment.data.max_sequence_length,
                                 start_step=start_step),
        keras.callbacks.BackupAndRestore(backup_dir, save_freq="epoch",
                                         delete_checkpoint=False),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
        training.ReseedDropout(),
    ]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    model.fit(train_ds, epochs=t.steps // t.save_every, steps_per_epoch=t.save_every,
              validation_data=eval_ds, validation_steps=eval_batches or None,
              callbacks=callbacks, verbose=verbose, shuffle=False)

    encoder.save(os.path.join(run_dir, "encoder.keras"))
    model.save(os.path.join(run_dir, "masked_lm.keras"))
    records = callbacks[0].records
    summary = dict(records[-1]) if records else {}
    summary["run_dir"] = run_dir
    return summary

