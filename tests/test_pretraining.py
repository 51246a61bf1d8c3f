"""`tfmask.train.pretraining.pretrain` in-process: distributed end to end, whole-word, TFDS-free."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import tensorflow as tf

from helpers import two_cpu_strategy, write_corpus
from tfmask.config import Experiment
from tfmask.runs import load_encoder
from tfmask.train.pretraining import pretrain


def tiny_experiment(corpus, **train):
    exp = Experiment()
    exp.data.corpus = [corpus]
    exp.data.max_sequence_length = 32
    exp.data.eval_holdout = 0.05
    exp.tokenizer.vocabulary_size = 120
    exp.masking.strategy = "whole_word"
    exp.train.batch_size = 8
    exp.train.steps = 10
    exp.train.save_every = 5
    exp.train.eval_steps = 2
    for k, v in train.items():
        setattr(exp.train, k, v)
    return exp


def test_pretrain_under_mirrored_strategy_on_two_cpus(tmp_path, capsys):
    """The pipeline's batches (int32 padding mask, globally normalised weights) go through
    `fit` on two replicas, and the run directory is complete. stdout is not a terminal here,
    so progress comes as lines, one at each checkpoint with its eval results."""
    corpus = write_corpus(str(tmp_path / "corpus"), num_lines=400)
    strategy = two_cpu_strategy()
    assert strategy.num_replicas_in_sync == 2
    out = str(tmp_path / "run")
    summary = pretrain(tiny_experiment(corpus), out, strategy=strategy)  # verbose=None
    assert summary["step"] == 10 and np.isfinite(summary["loss"])
    intervals = [line for line in capsys.readouterr().out.splitlines() if "done in" in line]
    assert [line.split("  loss")[0] for line in intervals] == ["step 5/10", "step 10/10"]
    number = r"\d+\.\d{4}"
    assert all(re.search(rf"masked_accuracy {number}  val_loss {number}  "
                         rf"val_masked_accuracy {number}  lr ", line) for line in intervals)
    assert 0.0 <= summary["eval_masked_accuracy"] <= 1.0
    history = json.load(open(os.path.join(out, "history.json")))
    assert [r["step"] for r in history] == [5, 10]
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["masking"]["strategy"] == "whole_word"
    assert load_encoder(out).vocabulary_size == config["encoder"]["vocabulary_size"]


def test_input_pipelines_read_disjoint_files(tmp_path):
    """With an `InputContext` (distribute_datasets_from_function, multi-worker), each input
    pipeline reads its own files and batches per replica."""
    from helpers import TINY_VOCAB, tiny_tokenizer
    from tfmask.config import DataConfig, MaskingConfig
    from tfmask.text import pretraining_data

    files = []
    for i in range(4):
        path = tmp_path / f"part{i}.txt"
        # Each file uses one marker word, so a sequence tells which file it came from.
        path.write_text("\n".join([f"{TINY_VOCAB[5 + i]} cat sat"] * 30) + "\n")
        files.append(str(path))
    tokenizer = tiny_tokenizer()
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2,
                                             input_pipeline_id=pipeline_id,
                                             num_replicas_in_sync=2)
        ds = pretraining_data.pretraining_dataset(
            tokenizer, DataConfig(corpus=files, eval_holdout=0.0, max_sequence_length=8),
            MaskingConfig(max_predictions=2, selection_rate=0.0), batch_size=8,
            training=False, input_context=context)
        markers = set()
        for x, _, _ in ds:
            assert x["token_ids"].shape[0] <= 4  # per-replica batch: 8 / 2 replicas
            markers |= set(x["token_ids"][:, 1].numpy().tolist())
        seen.append(markers)
    assert seen[0] and seen[1] and not seen[0] & seen[1]
