"""`tfmask.pretraining.pretrain` in-process: distributed end to end, whole-word, TFDS-free."""

from __future__ import annotations

import json
import os

import numpy as np

from helpers import two_cpu_strategy, write_corpus
from tfmask.config import Experiment
from tfmask.pretraining import load_encoder, pretrain


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


def test_pretrain_under_mirrored_strategy_on_two_cpus(tmp_path):
    """The pipeline's batches (int32 padding mask, globally normalised weights) go through
    `fit` on two replicas, and the run directory is complete."""
    corpus = write_corpus(str(tmp_path / "corpus"), num_lines=400)
    strategy = two_cpu_strategy()
    assert strategy.num_replicas_in_sync == 2
    out = str(tmp_path / "run")
    summary = pretrain(tiny_experiment(corpus), out, strategy=strategy, verbose=0)
    assert summary["step"] == 10 and np.isfinite(summary["loss"])
    assert 0.0 <= summary["eval_masked_accuracy"] <= 1.0
    history = json.load(open(os.path.join(out, "history.json")))
    assert [r["step"] for r in history] == [5, 10]
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["masking"]["strategy"] == "whole_word"
    assert load_encoder(out).vocabulary_size == config["encoder"]["vocabulary_size"]
