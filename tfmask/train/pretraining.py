"""`pretrain()`: raw text to a pretrained encoder in a run directory.

A run directory holds

    config.json        the full resolved `Experiment`
    vocab.txt          the WordPiece vocabulary
    masking/           what entity, keyword or PMI masking matches (`corpus_statistics`)
    checkpoints/       `BackupAndRestore` state (weights + optimizer) while the run is
                       unfinished: re-running the same command resumes here
    encoder.keras      the trained `BertEncoder` (what fine-tuning and export load)
    masked_lm.keras    encoder + MLM head (fill-mask)
    history.json       one record per checkpoint interval (see `HistoryRecorder`)
    history.png        loss, masked-accuracy and learning-rate curves
    tensorboard/       TensorBoard logs

The `.keras` files hold weights only, no optimizer. They are written after the last step:
with both present the run is finished, `checkpoints/` is removed (the optimizer state is of no
further use: `--init` reads `encoder.keras`, `vocab.txt` and `config.json`), and re-running
the command trains nothing and returns the last record.

With `train.init` (`tfmask pretrain --init RUN`) the run continues MLM from a pretrain or
import run, as domain- or task-adaptive pretraining does: it takes that run's vocabulary,
casing, encoder configuration and weights, and its MLM head (`masked_lm.keras`; a run without
one gets a fresh head, said in the log). No vocabulary is learned and the preset is not used.

Across workers (`--strategy multi_worker`, `tfmask.train.distribute`) every worker runs
`pretrain` with the same arguments: the chief learns the vocabulary, claims the run directory
and writes it; the others receive what they need from it and write into temporary folders.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from tfmask import presets, runs
from tfmask.text import corpus_statistics, pretraining_data, text_files, tokenization
from tfmask.train import checkpoints, distribute, precision
from tfmask.train.callbacks import (HistoryRecorder, ReseedDropout, progress_callbacks,
                                    quiet_unused_pooler_warning, resumed_epoch)
from tfmask.train.optimizer import build_optimizer, compile_model
from tfmask.config import DataConfig, Experiment, MaskingConfig
from tfmask.model.encoder import BertEncoder, with_dropout
from tfmask.model.heads import MaskedLM


EMBEDDED_EVAL_HOLDOUT = 0.05


def resolve_corpus(experiment: Experiment, run_dir: str) -> None:
    """Fills `data.corpus` with the embedded corpus when no text source is given."""
    if experiment.data.corpus or experiment.data.tfds:
        return
    from tfmask import demo

    directory = os.path.join(run_dir, "embedded_corpus")
    demo.write_corpus(directory, seed=0)
    experiment.data.corpus = [os.path.join(directory, "*.txt")]
    if experiment.data.eval_holdout == DataConfig.eval_holdout:
        # 1% of a 300 KB corpus is a handful of sequences: hold out 5% for a stable curve.
        experiment.data.eval_holdout = EMBEDDED_EVAL_HOLDOUT


def training_lines(experiment: Experiment) -> tf.data.Dataset:
    """The lines a vocabulary may be learned from: training text only, held-out lines excluded."""
    # The pipelines' own reading (a CoNLL corpus as its sentences), document ends dropped.
    lines = corpus_statistics.training_text(experiment.data)
    return lines.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)


#: What `checkpoints.StopOnNonFiniteLoss` suggests when the loss is NaN or infinite.
_NON_FINITE_ADVICE = ("Try a lower --learning-rate, a longer --warmup-steps, a smaller "
                      "--set train.clipnorm=..., or --precision float32, in a new --out (a "
                      "run directory keeps its configuration).")


def _require_text(experiment: Experiment) -> None:
    """A training split with at least one line (the hold-out can take a tiny corpus's all)."""
    for _ in training_lines(experiment).take(1):
        return
    d = experiment.data
    source = f"--tfds {d.tfds} (feature {d.tfds_text_key!r})" if d.tfds else \
        "--corpus " + " ".join(repr(p) for p in d.corpus)
    held = (f"; --eval-holdout {d.eval_holdout} holds lines out for evaluation, "
            "--eval-holdout 0 or an --eval-corpus keeps them all") if d.holdout_active else ""
    raise ValueError(f"{source}: no line of text left to train on{held}")


def prepare_vocabulary(experiment: Experiment, run_dir: str) -> tokenization.WordPieceTokenizer:
    """Loads `RUN/vocab.txt` (resume), the `--init` run's, the given `--vocab`, or learns one
    from the corpus."""
    path = os.path.join(run_dir, "vocab.txt")
    lower = experiment.tokenizer.lower_case
    if os.path.exists(path):
        vocab = tokenization.load_vocabulary(path)
    elif experiment.train.init:
        _require_text(experiment)
        vocab = runs.load_tokenizer(experiment.train.init).vocab
    elif experiment.tokenizer.vocab:
        vocab = tokenization.load_vocabulary(experiment.tokenizer.vocab)
    else:
        _require_text(experiment)
        print(f"Learning a {experiment.tokenizer.vocabulary_size}-token WordPiece vocabulary "
              "from the corpus...", flush=True)
        vocab = tokenization.learn_vocabulary(
            training_lines(experiment), experiment.tokenizer.vocabulary_size, lower)
    if not os.path.exists(path):
        if experiment.tokenizer.vocab:
            _require_text(experiment)
        runs.write_vocabulary(run_dir, vocab)
    return tokenization.WordPieceTokenizer(vocab, lower_case=lower)


def dataset_kwargs(experiment: Experiment, tokenizer, masking_tables=None) -> dict:
    """Arguments of `pretraining_data.pretraining_dataset` shared by the training and eval
    pipelines (which add `training`, `start_step` or `eval_split`)."""
    return dict(tokenizer=tokenizer, data=experiment.data, masking=experiment.masking,
                batch_size=experiment.train.batch_size, seed=experiment.train.seed,
                masking_tables=masking_tables)


def eval_dataset(experiment: Experiment, tokenizer) -> tuple[tf.data.Dataset | None, int]:
    """The same eval batches at every checkpoint: (dataset, number of batches)."""
    if not experiment.data.eval_corpus and not experiment.data.holdout_active:
        return None, 0
    kwargs = dataset_kwargs(experiment, tokenizer)
    # Every run is evaluated with BERT's masking (15% of pieces, 80/10/10, token level), so
    # held-out masked accuracy compares across strategies, rates and schedules.
    kwargs["masking"] = MaskingConfig(max_predictions=experiment.masking.max_predictions)
    ds = pretraining_data.pretraining_dataset(**kwargs, training=False, eval_split=True)
    ds = ds.take(experiment.train.eval_steps).cache()
    count = sum(1 for _ in ds)
    if count == 0:
        d = experiment.data
        corpus = f"--tfds {d.tfds}" if d.tfds else "--corpus " + " ".join(map(repr, d.corpus))
        source = ("--eval-corpus " + " ".join(map(repr, d.eval_corpus)) if d.eval_corpus
                  else f"--eval-holdout {d.eval_holdout} of {corpus}")
        raise ValueError(
            f"{source}: the evaluation text yields no sequence (no line of text, or no line "
            "held out); give a larger --eval-corpus or --eval-holdout, or --eval-holdout 0 "
            "to train without evaluation")
    return ds.repeat(), count


def pretrain(experiment: Experiment, run_dir: str, strategy=None, verbose=None) -> dict:
    """Pretrains (or resumes pretraining) a BERT encoder with MLM and writes `run_dir`.

    Args:
      experiment: the configuration. `encoder` is derived from `train.preset`, the vocabulary
        and `data.max_sequence_length`.
      run_dir: output directory. If it holds a run with the same configuration, training
        resumes from its last checkpoint (a finished run: nothing is trained, its last
        record is returned); a different configuration is an error.
      strategy: a `tf.distribute.Strategy`; default chosen by `train.strategy` (before
        anything else: a multi-worker strategy must precede every other TensorFlow op).
      verbose: progress (`callbacks.progress_callbacks`): None (default), a live progress bar
        on a terminal and otherwise (log file, CI, notebook) a line every 30 s or 10% of the
        run, with one at every checkpoint; 0 silent; 1 the bar; 2 the lines; or a
        `callbacks.ProgressLogger` for lines at its own interval.

    Returns:
      The last `history.json` record plus `run_dir`.
    """
    experiment.validate()  # before anything is written: a mistake leaves no trace
    # So is a bad line of the corpus: read once in plain Python, not deep in tf.data (with
    # --skip-bad-lines such lines are counted, and the pipelines leave them out).
    text_files.check_corpus(experiment.data)
    strategy = strategy or distribute.choose_strategy(experiment.train.strategy)
    policy = precision.choose(experiment.train, strategy)
    with distribute.worker_directory(strategy, run_dir) as out, precision.policy_scope(policy):
        summary = _pretrain(experiment, run_dir, out, strategy, verbose)
    summary["run_dir"] = run_dir
    return summary


#: Peak learning rate of continued pretraining (`--init`) when none is given: Hugging Face's
#: default for training from a checkpoint (as fine-tuning's default here); the preset's rates
#: are for random weights and would undo much of what the checkpoint learned.
CONTINUED_LEARNING_RATE = 5e-5


def continue_from_init(experiment: Experiment) -> None:
    """With `train.init`: takes the run's casing and encoder configuration (its vocabulary is
    read by `prepare_vocabulary`), and the continued-pretraining learning rate unless one is
    given. Every worker calls it (its tokenizer needs the casing)."""
    init = experiment.train.init
    if not init:
        return
    experiment.tokenizer.lower_case = runs.tokenizer_config(init).lower_case
    experiment.encoder = runs.encoder_config(init)
    if experiment.train.learning_rate is None:
        experiment.train.learning_rate = CONTINUED_LEARNING_RATE


#: Peak learning rate of the head warm-up (`train.head_warmup_steps`): only the fresh MLM
#: head trains (the encoder, with the tied token embedding, is frozen), a few hundred
#: thousand weights started at random, so a rate for random weights.
HEAD_WARMUP_LEARNING_RATE = 1e-3


def has_masked_lm_head(init: str) -> bool:
    """Whether the run `init` holds an MLM head (`masked_lm.keras`)."""
    return os.path.exists(os.path.join(init, runs.FINAL_FILES["pretrain"][1]))


def warm_up_head(model: MaskedLM, experiment: Experiment, train_ds, eval_ds, eval_batches,
                 verbose, jit_compile: bool = False) -> dict:
    """Trains `model`'s MLM head alone for `train.head_warmup_steps` steps (encoder frozen,
    AdamW at `HEAD_WARMUP_LEARNING_RATE` with 10% warm-up and linear decay, on the run's own
    batches); returns the held-out loss and masked accuracy before and after (when there is
    held-out text). Leaves the encoder trainable and the model to be compiled again."""
    t = experiment.train
    steps = t.head_warmup_steps
    model.encoder.trainable = False
    compile_model(model, precision.with_loss_scaling(
        build_optimizer(HEAD_WARMUP_LEARNING_RATE, steps, -1, t.weight_decay, t.clipnorm,
                        t.adam_epsilon), t.precision), "masked_accuracy", jit_compile)

    def evaluate() -> dict:
        if eval_ds is None:
            return {"loss": None, "masked_accuracy": None}
        scores = model.evaluate(eval_ds, steps=eval_batches, verbose=0, return_dict=True)
        return {k: float(scores[k]) for k in ("loss", "masked_accuracy")}

    before = evaluate()
    print(f"Warming up the fresh MLM head: {steps} steps with the encoder frozen (lr "
          f"{HEAD_WARMUP_LEARNING_RATE:g}; --head-warmup-steps 0 skips it).", flush=True)
    verbose, progress = progress_callbacks(verbose, steps_per_epoch=steps)
    model.fit(train_ds, epochs=1, steps_per_epoch=steps, callbacks=progress,
              verbose=verbose, shuffle=False)
    after = evaluate()
    model.encoder.trainable = True
    summary = {"head_warmup_steps": steps,
               "eval_masked_accuracy_before": before["masked_accuracy"],
               "eval_masked_accuracy_after": after["masked_accuracy"],
               "eval_loss_before": before["loss"], "eval_loss_after": after["loss"]}
    if eval_ds is not None:
        print(f"Head warm-up done: held-out masked accuracy {before['masked_accuracy']:.4f} -> "
              f"{after['masked_accuracy']:.4f}, loss {before['loss']:.3f} -> "
              f"{after['loss']:.3f}.", flush=True)
    return summary


def build_masked_lm(experiment: Experiment) -> tuple[BertEncoder, MaskedLM]:
    """(encoder, `MaskedLM`) to train: random `experiment.encoder` weights, or with
    `train.init` the run's `masked_lm.keras` (encoder and MLM head), else its `encoder.keras`
    under a fresh head. Call it under the strategy's scope, after seeding."""
    init = experiment.train.init
    if not init:
        encoder = BertEncoder.from_encoder_config(experiment.encoder)
        return encoder, MaskedLM(encoder)
    if has_masked_lm_head(init):
        model = runs.load_masked_lm(init)
        print(f"Continuing MLM from {init}: its encoder and MLM head.", flush=True)
        if model.encoder.dtype_policy.name != experiment.train.precision:
            # A `.keras` file keeps the dtype policy it was saved with: rebuild under the
            # run's (`precision.policy_scope`), same weights.
            saved, model = model, MaskedLM(with_dropout(model.encoder, model.encoder.dropout))
            model.set_weights(saved.get_weights())
        return model.encoder, model
    print(f"Continuing MLM from {init}: its encoder under a fresh, randomly initialised MLM "
          "head (the run has no masked_lm.keras).", flush=True)
    if not experiment.train.head_warmup_steps:
        print("No head warm-up (--head-warmup-steps 0): the random head's gradients reach the "
              "encoder from the first step.", flush=True)
    encoder = runs.load_encoder(init)
    if encoder.dtype_policy.name != experiment.train.precision:  # as above
        encoder = with_dropout(encoder, encoder.dropout)
    return encoder, MaskedLM(encoder)


def _complete(experiment: Experiment, vocabulary_size: int) -> None:
    """Fills in what follows from the vocabulary: its size, the encoder, the learning rate."""
    t = experiment.train
    experiment.tokenizer.vocabulary_size = vocabulary_size
    if t.init:  # `continue_from_init` set the encoder and the learning rate
        return
    if t.learning_rate is None:
        t.learning_rate = presets.default_learning_rate(t.preset)
    experiment.encoder = presets.encoder_config(
        t.preset, vocabulary_size,
        max_sequence_length=max(512, experiment.data.max_sequence_length),
        dropout=experiment.encoder.dropout)


def _pretrain(experiment: Experiment, run_dir: str, out: str, strategy, verbose) -> dict:
    """`pretrain` on one worker, which writes into `out` (`run_dir` on the chief)."""
    t = experiment.train
    os.makedirs(out, exist_ok=True)
    resolve_corpus(experiment, out)  # each worker writes the same embedded corpus for itself
    continue_from_init(experiment)
    backup_dir = os.path.join(out, "checkpoints")

    def prepare() -> dict:  # on the chief
        tokenizer = prepare_vocabulary(experiment, out)
        _complete(experiment, tokenizer.vocabulary_size)
        runs.claim_run_dir(experiment, out)
        last = None
        if runs.is_finished(out, "pretrain"):
            print(f"{run_dir} is a finished run (encoder.keras and masked_lm.keras are there): "
                  "nothing left to train. Choose a new --out to train again.", flush=True)
            last = _finish(out, runs.read_json(os.path.join(out, "history.json")))
        # The lists entity / keyword / PMI masking read (first passes over the training
        # text, kept in RUN/masking/ and read back on resume).
        statistics = {} if last else corpus_statistics.prepare(
            experiment.data, experiment.masking, tokenizer, out)
        return {"vocab": tokenizer.vocab, "start_epoch": resumed_epoch(backup_dir),
                "finished": last, "masking_statistics": statistics}

    prepared = distribute.chief_first(strategy, prepare)
    if prepared["finished"] is not None:
        return prepared["finished"]
    tokenizer = tokenization.WordPieceTokenizer(prepared["vocab"],
                                                lower_case=experiment.tokenizer.lower_case)
    _complete(experiment, tokenizer.vocabulary_size)

    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    quiet_unused_pooler_warning()

    start_step = prepared["start_epoch"] * t.save_every
    if start_step:
        print(f"Resuming {run_dir} from step {start_step} of {t.steps}.", flush=True)
    runs.record_environment(out, start_step=start_step)
    tables = corpus_statistics.masking_tables(experiment.data, experiment.masking, tokenizer,
                                              prepared["masking_statistics"])
    train_ds = distribute.distribute_training_data(
        strategy, lambda input_context: pretraining_data.pretraining_dataset(
            **dataset_kwargs(experiment, tokenizer, tables), training=True,
            start_step=start_step,
            input_context=input_context, total_steps=t.steps))
    eval_ds, eval_batches = eval_dataset(experiment, tokenizer)

    with strategy.scope():
        encoder, model = build_masked_lm(experiment)
    distribute.enable_multi_worker_fit(model, strategy)
    jit_compile = t.jit_compile or distribute.needs_static_shapes(strategy)
    if (t.init and t.head_warmup_steps and not start_step
            and not has_masked_lm_head(t.init)):
        with strategy.scope():
            warm_up = warm_up_head(model, experiment, train_ds, eval_ds, eval_batches, verbose,
                                   jit_compile)
        distribute.chief_first(strategy, lambda: runs.write_json(
            os.path.join(out, "head_warmup.json"), warm_up))
    with strategy.scope():
        optimizer = build_optimizer(
            t.learning_rate, t.steps, t.warmup_steps, t.weight_decay, t.clipnorm,
            t.adam_epsilon)
        compile_model(model, precision.with_loss_scaling(optimizer, t.precision),
                      "masked_accuracy", jit_compile, t.steps_per_execution)

    # The history row of an interval is written before the checkpoint that marks the
    # interval done: a kill between the two then only repeats the interval, never loses a row.
    callbacks = [
        HistoryRecorder(out, t.save_every,
                                 t.batch_size * experiment.data.max_sequence_length,
                                 start_step=start_step),
        checkpoints.Checkpoints(backup_dir, save_freq="epoch", delete_checkpoint=False),
        distribute.SyncFromChief(strategy),  # right after the restore
        keras.callbacks.TensorBoard(os.path.join(out, "tensorboard")),
        ReseedDropout(),
        checkpoints.StopOnNonFiniteLoss(t.save_every, _NON_FINITE_ADVICE),
    ]
    tokens_per_step = t.batch_size * experiment.data.max_sequence_length
    verbose, progress = progress_callbacks(verbose, steps_per_epoch=t.save_every,
                                           tokens_per_step=tokens_per_step,
                                           epochs_are_intervals=True)
    callbacks += progress
    model.fit(train_ds, epochs=t.steps // t.save_every, steps_per_epoch=t.save_every,
              validation_data=eval_ds, validation_steps=eval_batches or None,
              callbacks=callbacks, verbose=verbose, shuffle=False)

    def save() -> dict:  # the chief's models (the other workers' folders are thrown away)
        # Both files present mark the run finished (`runs.FINAL_FILES`); a kill before then
        # resumes at the last checkpoint, which trains nothing and writes them again.
        runs.save_model(encoder, os.path.join(out, "encoder.keras"))
        runs.save_model(model, os.path.join(out, "masked_lm.keras"))
        return _finish(out, callbacks[0].records)

    # Every worker returns once the chief has written them (a next command may read them).
    return distribute.chief_first(strategy, save)


def _finish(run_dir: str, records: list[dict]) -> dict:
    """Removes the finished run's checkpoints; returns its last history record + `run_dir`."""
    runs.prune_checkpoints(run_dir)
    summary = dict(records[-1]) if records else {}
    summary["run_dir"] = run_dir
    return summary

