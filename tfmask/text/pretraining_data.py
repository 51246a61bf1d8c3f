"""The pretraining tf.data pipeline: raw text in, `(x, y, sample_weight)` batches out, all
inside the graph, configured by the `DataConfig` and `MaskingConfig` sections.

Per global batch:

    files (globs, shuffled, sharded) --interleave--> lines of each file + end-of-file marker
      -> hold-out split by a hash of the line (train / eval from the same files)
      -> tokenize 256 lines at a time (BasicTokenizer + FastWordpiece)   [tokenization.py]
      -> cut lines longer than the budget, pack consecutive lines         [packing.py]
      -> shuffle sequences (seeded), repeat, batch B (drop remainder)
      -> skip the batches a resumed run has already trained on
      -> [CLS]/[SEP]/pad, then mask with seed (seed, step)                 [masking.py]
      -> x = {token_ids, segment_ids, padding_mask, mask_positions}, y = mask_ids,
         sample_weight = mask_weights (1 on a predicted slot, 0 on an unused one)

Everything random is a function of `(seed, step)`, so a run resumed at step S sees exactly the
batches and masks an uninterrupted run sees from S on.

Across workers (`tf.distribute.InputContext`, one input pipeline a worker) each pipeline makes
its share of every global batch: with at least as many files (or TFDS shards) as pipelines it
reads its own files and batches B / pipelines sequences, masked with its own seeds; with fewer,
every pipeline builds the same global batches and keeps its slice, so the workers together
train on exactly the batches one process would. Either way the loss is normalised over the
global batch by `tfmask.train.optimizer.WeightedMeanCrossEntropy`, not here.
"""

from __future__ import annotations

import glob
import os
from typing import Sequence

import tensorflow as tf

from tfmask.config import DataConfig, MaskingConfig
from tfmask.text.corpus_formats import conll_file_lines, is_conll_corpus
from tfmask.text.masking import apply_masking
from tfmask.text.packing import chunk_lines, finalize, pack_lines
from tfmask.text.text_files import MAX_LINE_BYTES
from tfmask.text.tokenization import WordPieceTokenizer

_TOKENIZE_BATCH = 256
_HASH_BUCKETS = 10_000
# Mask seeds of evaluation batches live in their own stream so they never collide with
# training steps.
_EVAL_SEED_OFFSET = 1_000_003


def expand_globs(patterns: Sequence[str]) -> list[str]:
    """Expands file globs; raises `FileNotFoundError` naming the pattern that matched nothing."""
    files = []
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        matched = [m for m in matched if os.path.isfile(m)]
        if not matched:
            raise FileNotFoundError(f"--corpus {pattern!r} matches no file")
        files.extend(matched)
    return list(dict.fromkeys(files))  # de-duplicated, order kept


def file_lines(path: tf.Tensor, conll: bool = False) -> tf.data.Dataset:
    """Lines of one file followed by an empty line (the end-of-document marker); of a CoNLL
    file (`conll`), its sentences as lines (`corpus_formats.conll_file_lines`)."""
    lines = conll_file_lines(path) if conll else tf.data.TextLineDataset(path)
    return lines.concatenate(tf.data.Dataset.from_tensors(tf.constant("")))


def tfds_lines(name_split: str, text_key: str = "text", data_dir: str | None = None,
               input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Lines of a TFDS text dataset, e.g. `"wikipedia/20230601.en:train"`.

    Each example is one document: its text is split on newlines and followed by an empty line,
    so packing never crosses documents.
    """
    import tensorflow_datasets as tfds

    if ":" not in name_split:
        raise ValueError(f"--tfds expects NAME:SPLIT (e.g. wikipedia/20230601.en:train), "
                         f"got {name_split!r}")
    name, split = name_split.rsplit(":", 1)
    read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=None)
    try:
        ds = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False,
                       read_config=read_config)
    except Exception as e:  # noqa: BLE001  not found, offline, a bad split: TFDS's own types
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"--tfds {name_split}: {reason}") from None
    ds = ds.map(lambda example: example[text_key])
    return ds.flat_map(lambda text: tf.data.Dataset.from_tensor_slices(
        tf.concat([tf.strings.split(text, "\n"), [""]], 0)))


def tfds_file_count(name_split: str, data_dir: str | None = None) -> int:
    """How many files a TFDS split (`"NAME:SPLIT"`, slices included) is read from."""
    import tensorflow_datasets as tfds

    name, split = name_split.rsplit(":", 1)
    try:
        return len(tfds.builder(name, data_dir=data_dir).info.splits[split].file_instructions)
    except Exception as e:  # noqa: BLE001  not found, a bad split: TFDS's own types
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"--tfds {name_split}: {reason}") from None


def good_lines(lines: tf.data.Dataset) -> tf.data.Dataset:
    """`lines` without those `text_files.scan_corpus` skips (`data.skip_bad_lines`): lines
    that are not UTF-8 (transcoding with replacement changes them) or longer than
    `text_files.MAX_LINE_BYTES`."""

    def good(line):
        fixed = tf.strings.unicode_transcode(line, "UTF-8", "UTF-8", errors="replace",
                                             replacement_char=0xFFFD)
        return tf.logical_and(tf.equal(fixed, line),
                              tf.strings.length(line) <= MAX_LINE_BYTES)

    return lines.filter(good)


def holdout_filter(eval_holdout: float, keep_heldout: bool):
    """A `filter` predicate: held-out lines (an `eval_holdout` fraction, by hash) or the others.

    Empty lines (document ends) pass either way.
    """
    threshold = int(round(eval_holdout * _HASH_BUCKETS))

    def keep(line):
        heldout = tf.strings.to_hash_bucket_fast(line, _HASH_BUCKETS) < threshold
        is_marker = tf.equal(tf.strings.length(tf.strings.strip(line)), 0)
        return tf.logical_or(is_marker, tf.equal(heldout, keep_heldout))

    return keep


def pack_text_lines(lines: tf.data.Dataset, tokenizer: WordPieceTokenizer,
                    max_sequence_length: int, packing: str = "full_sentences"):
    """Lines (empty line = end of document) -> packed `(ids, word_starts)` sequences."""
    budget = max_sequence_length - 2

    def tokenize(batch):
        ids, starts = tokenizer.pieces_and_word_starts(batch)
        return chunk_lines(ids, starts, budget)

    chunks = lines.batch(_TOKENIZE_BATCH).map(tokenize).unbatch()
    return pack_lines(chunks, budget, packing)


def _fill_batch(batch, batch_size: int):
    """A batch of fewer than `batch_size` sequences filled up with copies of its first one
    that weigh 0: the loss and accuracy are those of the real sequences, every batch has one
    shape, and the strategy gives every replica an equal share (Keras averages the replicas'
    losses weighted by their number of sequences)."""
    x, y, weights = batch
    missing = batch_size - tf.shape(y)[0]

    def grow(t, zero=False):
        first = tf.zeros_like(t[:1]) if zero else t[:1]
        grown = tf.concat([t, tf.repeat(first, missing, axis=0)], 0)
        return tf.ensure_shape(grown, [batch_size] + t.shape[1:])

    return {k: grow(v) for k, v in x.items()}, grow(y), grow(weights, zero=True)


def pretraining_dataset(
    tokenizer: WordPieceTokenizer,
    data: DataConfig,
    masking: MaskingConfig,
    *,
    batch_size: int,
    seed: int = 0,
    training: bool = True,
    start_step: int = 0,
    eval_split: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    total_steps: int | None = None,
    masking_tables=None,
) -> tf.data.Dataset:
    """Builds the MLM pretraining pipeline (see the module docstring).

    Args:
      tokenizer: the `WordPieceTokenizer`.
      data: where the text comes from and how it is packed: `corpus` (file globs: one
        sentence or paragraph a line, an empty line between documents) or `tfds` (a TFDS
        `NAME:SPLIT` whose `tfds_text_key` holds text), `eval_corpus` / `eval_holdout`,
        `max_sequence_length` (L, `[CLS]` and `[SEP]` included), `packing`
        ("full_sentences" or "one_line") and `shuffle_buffer`.
      masking: the masking strategy and rates (see `masking.apply_masking`).
      batch_size: global batch size (split across replicas by the strategy).
      seed: the run seed: file order, sequence shuffling and every step's mask derive from it.
      training: repeat and shuffle forever (True) or make one deterministic pass (False)
        whose last batch is filled up to B sequences with copies that weigh 0.
      start_step: skip this many batches (a resumed run starts where it stopped).
      eval_split: read the evaluation text instead of the training text: `eval_corpus`, or
        without one the `eval_holdout` fraction of lines (by hash) that training never sees.
      input_context: for `distribute_datasets_from_function` (several workers): this
        pipeline's share of each global batch (see the module docstring), in batches of
        B / replicas for its replicas in turn (B must be a multiple of the replicas).
      total_steps: the training steps, for a selection-rate schedule
        (`masking.final_selection_rate`): step S masks at the rate of progress S / total.
      masking_tables: the `corpus_statistics.MaskingTables` of entity, keyword or PMI
        masking (from the run's first passes); None builds them now from the training text
        when the strategy needs them.

    Returns:
      A dataset of `(x, y, sample_weight)`:
        x: dict of `token_ids` [B, L] int32, `segment_ids` [B, L] int32, `padding_mask`
           [B, L] int32 (1 = real token), `mask_positions` [B, P] int32;
        y: `mask_ids` [B, P] int32;
        sample_weight: [B, P] float32 `mask_weights`, 1.0 on each predicted slot and 0.0 on
           unused ones; `compile_model`'s loss is the mean over the predicted slots of the
           global batch, identical for 1 or N replicas and workers.
    """
    if bool(data.corpus) == bool(data.tfds):
        raise ValueError("give exactly one of data.corpus (files) and data.tfds")
    if eval_split and not (data.eval_corpus or data.holdout_active):
        raise ValueError("no evaluation text: give data.eval_corpus or data.eval_holdout > 0")
    max_sequence_length = data.max_sequence_length
    if masking_tables is None:
        from tfmask.text.corpus_statistics import masking_tables as build_tables

        masking_tables = build_tables(data, masking, tokenizer)
    if masking.max_predictions > max_sequence_length:
        raise ValueError(f"max_predictions ({masking.max_predictions}) > max_sequence_length "
                         f"({max_sequence_length})")
    # The held-out lines of the corpus are split off by hash; an eval corpus is read whole.
    holdout = data.eval_holdout if data.holdout_active else 0.0
    files = None
    if eval_split and data.eval_corpus:
        files = expand_globs(data.eval_corpus)
    elif not data.tfds:
        files = expand_globs(data.corpus)
    pipelines, pipeline_id, per_replica = 1, 0, batch_size
    if input_context is not None:
        pipelines = input_context.num_input_pipelines
        pipeline_id = input_context.input_pipeline_id
        replicas = input_context.num_replicas_in_sync
        if batch_size % replicas:
            raise ValueError(f"--batch-size {batch_size} must be a multiple of the {replicas} "
                             "replicas, which each train on an equal share of it")
        per_replica = batch_size // replicas
    # Several pipelines read files of their own when each can have one; otherwise each builds
    # the global batches and keeps its slice.
    sources_count = len(files) if files is not None else (
        tfds_file_count(data.tfds, data.tfds_data_dir) if pipelines > 1 else 1)
    own_files = pipelines > 1 and sources_count >= pipelines
    pipeline_batch = batch_size // pipelines if own_files else batch_size
    options = tf.data.Options()
    options.deterministic = True
    # With an input context this pipeline is sharded already; without one, each worker of a
    # multi-worker strategy that distributes it keeps its slice of every global batch.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if input_context is not None
        else tf.data.experimental.AutoShardPolicy.DATA)

    if files is None:
        lines_per_source = None
        lines = tfds_lines(data.tfds, data.tfds_text_key, data.tfds_data_dir,
                           input_context if own_files else None)
    else:
        sources = tf.data.Dataset.from_tensor_slices(files)
        if own_files:
            sources = sources.shard(pipelines, pipeline_id)
        if training:
            sources = sources.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        lines_per_source = sources
        conll = is_conll_corpus(files)  # NER files read as their sentences

    def to_sequences(lines):
        if data.skip_bad_lines:
            lines = good_lines(lines)
        if holdout > 0:
            lines = lines.filter(holdout_filter(holdout, keep_heldout=eval_split))
        return pack_text_lines(lines, tokenizer, max_sequence_length, data.packing)

    if lines_per_source is not None:
        # One packer per file, so documents never cross files and files pack in parallel.
        sequences = lines_per_source.interleave(
            lambda path: to_sequences(file_lines(path, conll)),
            cycle_length=min(len(files), 8), block_length=16,
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        sequences = to_sequences(lines)

    if training:
        sequences = sequences.shuffle(data.shuffle_buffer, seed=seed,
                                      reshuffle_each_iteration=True)
        sequences = sequences.repeat()
    # Training batches are always full (every step, every replica, the same number of
    # sequences); an evaluation pass keeps its last, smaller batch so small held-out sets
    # still count, and fills it up (`_fill_batch`).
    batches = sequences.ragged_batch(pipeline_batch, drop_remainder=training)
    if start_step:
        batches = batches.skip(start_step)
    step_offset = start_step if training else _EVAL_SEED_OFFSET

    def to_model_inputs(step, batch):
        ids, starts = batch
        features = finalize(ids, starts, max_sequence_length, tokenizer.cls_token_id,
                            tokenizer.sep_token_id, tokenizer.pad_token_id)
        # Pipelines with files of their own mask with seeds of their own.
        stream = step * pipelines + pipeline_id if own_files else step
        step_seed = tf.stack([tf.cast(seed, tf.int64), stream])
        if masking_tables is not None:  # entity, keyword, PMI: what their strategies read
            features = masking_tables.annotate(features)
        progress = (tf.cast(step, tf.float32) / total_steps
                    if training and total_steps and masking.final_selection_rate is not None
                    else None)
        features = apply_masking(features, step_seed, masking,
                                 vocabulary_size=tokenizer.vocabulary_size,
                                 mask_token_id=tokenizer.mask_token_id,
                                 special_ids=tokenizer.special_ids, progress=progress)
        x = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask",
                                      "mask_positions")}
        return x, features["mask_ids"], features["mask_weights"]

    batches = batches.enumerate(start=step_offset).map(
        to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not training:
        batches = batches.map(lambda *batch: _fill_batch(batch, pipeline_batch))
    if pipelines > 1 and not own_files:  # the global batch: keep this pipeline's rows
        share = batch_size // pipelines
        rows = slice(pipeline_id * share, (pipeline_id + 1) * share)
        batches = batches.map(lambda *batch: tf.nest.map_structure(lambda t: t[rows], batch))
    if input_context is not None and per_replica != (batch_size // pipelines):
        batches = batches.rebatch(per_replica, drop_remainder=training)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)
