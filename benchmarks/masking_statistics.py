"""Masking statistics on held-out batches of the real pipeline, one JSON line per strategy.

    python benchmarks/masking_statistics.py --vocab RUN/vocab.txt --max-predictions 20

For each strategy it builds `pretraining_dataset(..., eval_split=True)` (the held-out lines of
`--corpus`; the first passes of entity, keyword and PMI masking read only the training lines)
and measures, from the batches alone:

- `rate`: predicted pieces / selectable pieces (not special, not padding), after the cap;
- `mask`, `random`, `keep`: the replacement split of the predicted pieces;
- `special_or_padding`: predicted positions on `[CLS]`, `[SEP]`, padding or a special id (0);
- `split_units`: units (words; entities; PMI n-grams) only partly predicted (0 except for
  `random`, which predicts pieces);
- entity: `entity_share` of selectable pieces in a listed entity, `entity_share_predicted`;
- pmi: `ngram_share` of selectable pieces in a matched n-gram, `ngram_share_predicted`;
- keyword: `tfidf_rank_predicted`, the mean percentile rank (0 lowest, 1 highest, within its
  sequence) of the predicted pieces' word TF-IDF, beside whole-word masking's on the same
  batches (`tfidf_rank_whole_word`, about 0.5).

Word boundaries are read from the original pieces (`##` continues a word), units from the
run's lists, exactly as the graph matches them.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from tfmask.config import DataConfig, MaskingConfig
from tfmask.text import corpus_statistics as cs
from tfmask.text import tokenization
from tfmask.text.pretraining_data import pretraining_dataset

DEFAULT_CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "corpus",
                              "*.txt")


def batches(tokenizer, data, config, tables, count, batch_size):
    """`count` held-out batches as numpy: (original ids, masked ids, positions, weights)."""
    ds = pretraining_dataset(tokenizer, data, config, batch_size=batch_size, seed=0,
                             training=False, eval_split=True, masking_tables=tables)
    for x, y, w in ds.take(count).as_numpy_iterator():
        original = x["token_ids"].copy()
        rows, slots = np.nonzero(w)
        original[rows, x["mask_positions"][rows, slots]] = y[rows, slots]
        yield original, x["token_ids"], x["mask_positions"], w


def word_ids_of(original, tokenizer):
    """[B, L] word index of each piece (a piece starting with `##` continues a word, unless
    it follows a special id), -1 on special ids and padding."""
    continues = np.array([t.startswith("##") for t in tokenizer.vocab])[original]
    special = np.isin(original, tokenizer.special_ids)
    # A line cut inside a word (longer than the sequence) starts its chunk with a "##" piece:
    # the pipeline takes that piece for a word start, so does this.
    after_special = np.concatenate([np.ones_like(special[:, :1]), special[:, :-1]], axis=1)
    starts = (~continues | after_special) & ~special
    words = np.cumsum(starts, axis=1) - 1
    return np.where(special, -1, words).astype(np.int32)


def ranks_of(priority, can, sel) -> list[np.ndarray]:
    """Percentile rank (0 lowest, 1 highest) within its sequence of each selected piece's
    `priority`, per sequence."""
    out = []
    for b in range(len(sel)):
        order = np.argsort(np.argsort(priority[b][can[b]], kind="stable"), kind="stable")
        rank = np.zeros(len(sel[b]))
        rank[can[b]] = order / max(1, can[b].sum() - 1)
        out.append(rank[sel[b]])
    return out


def measure(tokenizer, data, config, tables, args):
    counts = dict(pieces=0, predicted=0, mask=0, random=0, keep=0, bad=0, split=0,
                  entity=0, entity_predicted=0, ngram=0, ngram_predicted=0)
    ranks = []
    for original, masked, positions, weights in batches(
            tokenizer, data, config, tables, args.batches, args.batch_size):
        word_ids = word_ids_of(original, tokenizer)
        can = word_ids >= 0
        used = weights > 0
        sel = np.zeros(original.shape, bool)
        rows, slots = np.nonzero(used)
        sel[rows, positions[rows, slots]] = True
        counts["pieces"] += can.sum()
        counts["predicted"] += sel.sum()
        counts["bad"] += (sel & ~can).sum()
        new, old = masked[sel], original[sel]
        counts["mask"] += (new == tokenizer.mask_token_id).sum()
        counts["keep"] += (new == old).sum()
        counts["random"] += ((new != old) & (new != tokenizer.mask_token_id)).sum()
        features = {"token_ids": tf.constant(original), "word_ids": tf.constant(word_ids)}
        annotated = tables.annotate(features) if tables is not None else features
        units = {"entity": "entity_group_ids", "pmi": "pmi_group_ids"}.get(config.strategy)
        groups = annotated[units].numpy() if units else word_ids
        if config.strategy != "random":
            for b in range(len(sel)):
                for g in np.unique(groups[b][sel[b]]):
                    counts["split"] += not sel[b][(groups[b] == g) & can[b]].all()
        if config.strategy == "pmi":  # pieces of a matched n-gram (2 words or more)
            for b in range(len(sel)):
                for g in np.unique(groups[b][can[b]]):
                    piece = (groups[b] == g) & can[b]
                    if len(np.unique(word_ids[b][piece])) > 1:
                        counts["ngram"] += piece.sum()
                        counts["ngram_predicted"] += (piece & sel[b]).sum()
        if config.strategy == "entity":
            in_entity = annotated["entity_priority"].numpy() > 0
            counts["entity"] += (in_entity & can).sum()
            counts["entity_predicted"] += (in_entity & sel).sum()
        if config.strategy == "keyword":
            ranks += ranks_of(annotated["keyword_priority"].numpy(), can, sel)
    total = max(1, counts["predicted"])
    out = {"strategy": config.strategy, "sequences": args.batches * args.batch_size,
           "rate": round(counts["predicted"] / max(1, counts["pieces"]), 4),
           "mask": round(counts["mask"] / total, 4), "random": round(counts["random"] / total, 4),
           "keep": round(counts["keep"] / total, 4),
           "special_or_padding": int(counts["bad"]), "split_units": int(counts["split"])}
    if config.strategy == "entity":
        out["entity_share"] = round(counts["entity"] / max(1, counts["pieces"]), 4)
        out["entity_share_predicted"] = round(counts["entity_predicted"] / total, 4)
    if config.strategy == "pmi":
        out["ngram_share"] = round(counts["ngram"] / max(1, counts["pieces"]), 4)
        out["ngram_share_predicted"] = round(counts["ngram_predicted"] / total, 4)
    if config.strategy == "keyword":
        out["tfidf_rank_predicted"] = round(float(np.concatenate(ranks).mean()), 4)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", nargs="+", default=[DEFAULT_CORPUS])
    p.add_argument("--vocab", help="vocab.txt (default: learn --vocab-size from the corpus)")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--eval-holdout", type=float, default=0.05)
    p.add_argument("--selection-rate", type=float, default=0.15)
    p.add_argument("--max-predictions", type=int, default=20)
    p.add_argument("--keyword-strength", type=float, default=MaskingConfig.keyword_strength)
    p.add_argument("--entity-priority", type=float, default=MaskingConfig.entity_priority)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--strategies", nargs="+",
                   default=["random", "whole_word", "span", "entity", "keyword", "pmi"])
    args = p.parse_args(argv)
    corpus = [f for pattern in args.corpus for f in sorted(glob.glob(pattern))]
    data = DataConfig(corpus=corpus, max_sequence_length=args.seq_len,
                      eval_holdout=args.eval_holdout)
    if args.vocab:
        vocab = tokenization.load_vocabulary(args.vocab)
    else:
        from tfmask.text.corpus_statistics import training_text

        lines = training_text(data).filter(lambda t: tf.strings.length(tf.strings.strip(t)) > 0)
        vocab = tokenization.learn_vocabulary(lines, args.vocab_size)
    tokenizer = tokenization.WordPieceTokenizer(vocab)
    for strategy in args.strategies:
        config = MaskingConfig(strategy=strategy, selection_rate=args.selection_rate,
                               max_predictions=args.max_predictions,
                               keyword_strength=args.keyword_strength,
                               entity_priority=args.entity_priority)
        start = time.time()
        tables = cs.masking_tables(data, config, tokenizer)
        passes = time.time() - start
        out = measure(tokenizer, data, config, tables, args)
        out["first_pass_s"] = round(passes, 1)
        if strategy == "keyword":  # whole-word masking's rank on the same batches
            whole = MaskingConfig(strategy="whole_word", selection_rate=args.selection_rate,
                                  max_predictions=args.max_predictions)
            out["tfidf_rank_whole_word"] = _whole_word_rank(tokenizer, data, whole, tables,
                                                            args)
        print(json.dumps(out), flush=True)
    return 0


def _whole_word_rank(tokenizer, data, config, tables, args) -> float:
    """Mean TF-IDF percentile rank of whole-word masking's predictions (same batches)."""
    ranks = []
    for original, _, positions, weights in batches(tokenizer, data, config, None, args.batches,
                                                   args.batch_size):
        word_ids = word_ids_of(original, tokenizer)
        can = word_ids >= 0
        priority = tables.annotate({"token_ids": tf.constant(original),
                                    "word_ids": tf.constant(word_ids)})["keyword_priority"]
        priority = priority.numpy()
        sel = np.zeros(original.shape, bool)
        rows, slots = np.nonzero(weights > 0)
        sel[rows, positions[rows, slots]] = True
        ranks += ranks_of(priority, can, sel)
    return round(float(np.concatenate(ranks).mean()), 4)


if __name__ == "__main__":
    sys.exit(main())
