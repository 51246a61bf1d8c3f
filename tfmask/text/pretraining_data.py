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
         sample_weight = mask_weights normalised over the global batch

Everything random is a function of `(seed, step)`, so a run resumed at step S sees exactly the
batches and masks an uninterrupted run sees from S on.
"""

from __future__ import annotations

import glob
import os
from typing import Sequence

import tensorflow as tf

from tfmask.config import DataConfig, MaskingConfig
from tfmask.text.masking import apply_masking
from tfmask.text.packing import chunk_lines, finalize, pack_lines
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


def _file_lines(path: tf.Tensor) -> tf.data.Dataset:
    """Lines of one file followed by an empty line (the end-of-document marker)."""
    return tf.data.TextLineDataset(path).concatenate(tf.data.Dataset.from_tensors(tf.constant("")))


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
    ds = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False,
                   read_config=read_config)
    ds = ds.map(lambda example: example[text_key])
    return ds.flat_map(lambda text: tf.data.Dataset.from_tensor_slices(
        tf.concat([tf.strings.split(text, "\n"), [""]], 0)))


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
      training: repeat and shuffle forever (True) or make one deterministic pass (False).
      start_step: skip this many batches (a resumed run starts where it stopped).
      eval_split: read the evaluation text instead of the training text: `eval_corpus`, or
        without one the `eval_holdout` fraction of lines (by hash) that training never sees.
      input_context: for `distribute_datasets_from_function`: shards files per input pipeline
        and batches per replica.

    Returns:
      A dataset of `(x, y, sample_weight)`:
        x: dict of `token_ids` [B, L] int32, `segment_ids` [B, L] int32, `padding_mask`
           [B, L] int32 (1 = real token), `mask_positions` [B, P] int32;
        y: `mask_ids` [B, P] int32;
        sample_weight: [B, P] float32, `mask_weights * (B * P) / sum(mask_weights)`: Keras's
           default loss reduction divides by the B * P slots of each replica and the strategy
           averages replicas, so this scaling makes the loss the mean over the masked tokens
           of the *global* batch, identical for 1 or N replicas.
    """
    if bool(data.corpus) == bool(data.tfds):
        raise ValueError("give exactly one of data.corpus (files) and data.tfds")
    if eval_split and not (data.eval_corpus or data.holdout_active):
        raise ValueError("no evaluation text: give data.eval_corpus or data.eval_holdout > 0")
    max_sequence_length = data.max_sequence_length
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
    per_replica = batch_size
    if input_context is not None:
        per_replica = input_context.get_per_replica_batch_size(batch_size)
    options = tf.data.Options()
    options.deterministic = True

    if files is None:
        lines_per_source = None
        lines = tfds_lines(data.tfds, data.tfds_text_key, data.tfds_data_dir, input_context)
    else:
        sources = tf.data.Dataset.from_tensor_slices(files)
        if input_context is not None and input_context.num_input_pipelines > 1:
            sources = sources.shard(input_context.num_input_pipelines,
                                    input_context.input_pipeline_id)
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.OFF)
        else:
            # Each worker of a multi-worker strategy keeps every N-th element, whatever the
            # number of files.
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA)
        if training:
            sources = sources.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        lines_per_source = sources

    def to_sequences(lines):
        if holdout > 0:
            lines = lines.filter(holdout_filter(holdout, keep_heldout=eval_split))
        return pack_text_lines(lines, tokenizer, max_sequence_length, data.packing)

    if lines_per_source is not None:
        # One packer per file, so documents never cross files and files pack in parallel.
        sequences = lines_per_source.interleave(
            lambda path: to_sequences(_file_lines(path)),
            cycle_length=min(len(files), 8), block_length=16,
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        sequences = to_sequences(lines)

    if training:
        sequences = sequences.shuffle(data.shuffle_buffer, seed=seed,
                                      reshuffle_each_iteration=True)
        sequences = sequences.repeat()
    # Training batches are always full (the weight normalisation assumes B sequences); an
    # evaluation pass keeps its last, smaller batch so small held-out sets still count.
    batches = sequences.ragged_batch(per_replica, drop_remainder=training)
    if start_step:
        batches = batches.skip(start_step)
    step_offset = start_step if training else _EVAL_SEED_OFFSET

    def to_model_inputs(step, batch):
        ids, starts = batch
        features = finalize(ids, starts, max_sequence_length, tokenizer.cls_token_id,
                            tokenizer.sep_token_id, tokenizer.pad_token_id)
        step_seed = tf.stack([tf.cast(seed, tf.int64), step])
        features = apply_masking(features, step_seed, masking,
                                 vocabulary_size=tokenizer.vocabulary_size,
                                 mask_token_id=tokenizer.mask_token_id,
                                 special_ids=tokenizer.special_ids)
        weights = features["mask_weights"]
        weights = weights * tf.cast(tf.size(weights), tf.float32) / tf.maximum(
            tf.reduce_sum(weights), 1.0)
        x = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask",
                                      "mask_positions")}
        return x, features["mask_ids"], weights

    batches = batches.enumerate(start=step_offset).map(
        to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)
