"""`tfmask pretrain --init RUN`: continued MLM from a pretrain or import run.

The continued run starts from exactly the run's model (vocabulary, casing, encoder and MLM
head: the same loss on the same batch), records where it came from, resumes like any run, and
is itself an `--init` for fine-tuning; a checkpoint without an MLM head gets a fresh one.
(Conflicting flags are in test_cli's ARGUMENT_ERRORS.)
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

from helpers import TINY_VOCAB, google_bert_tensors, hf_state_dict, write_hf_folder
from tfmask import runs
from tfmask.config import ConfigError, Experiment
from tfmask.text import pretraining_data
from tfmask.train.pretraining import build_masked_lm, continue_from_init, pretrain


def continued(init: str, corpus: list[str], **data) -> Experiment:
    """Two steps of whole-word MLM from `init` (one checkpoint interval)."""
    e = Experiment()
    e.train.init = init
    e.data.corpus = list(corpus)
    e.data.eval_holdout = 0.0
    e.masking.strategy = "whole_word"
    e.train.batch_size = 8
    e.train.steps = e.train.save_every = 2
    e.masking.max_predictions = 3
    for k, v in data.items():
        setattr(e.data, k, v)
    return e


def mlm_loss(model, batch) -> float:
    """The weighted MLM loss of `model` on one `(x, mask_ids, mask_weights)` batch."""
    x, y, w = batch
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    return float(loss(y, model(x, training=False), sample_weight=w)) / float(np.sum(w))


def test_init_continues_from_the_run_and_resumes(pretraining_run, tmp_path, capsys):
    from tfmask.commands import show

    init, _, base = pretraining_run
    e = continued(init, base.data.corpus, max_sequence_length=32)
    # Step 0: the run's own model, so the loss on a batch is the run's loss on it.
    probe = continued(init, base.data.corpus, max_sequence_length=32)
    continue_from_init(probe)
    encoder, model = build_masked_lm(probe)
    original = runs.load_masked_lm(init)
    tokenizer = runs.load_tokenizer(init)
    batch = next(iter(pretraining_data.pretraining_dataset(
        tokenizer, probe.data, probe.masking, batch_size=8, seed=0, training=False)))
    assert mlm_loss(model, batch) == pytest.approx(mlm_loss(original, batch), abs=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(),
                                                    original.get_weights()))
    assert probe.encoder == runs.encoder_config(init)

    out = str(tmp_path / "continued")
    summary = pretrain(e, out, verbose=0)
    assert summary["step"] == 2 and np.isfinite(summary["loss"])
    assert "Continuing MLM from " + init + ": its encoder and MLM head." in capsys.readouterr().out
    config = runs.read_config(out)
    assert config["train"]["init"] == init
    assert config["encoder"] == runs.read_config(init)["encoder"]
    assert config["tokenizer"]["lower_case"] == runs.read_config(init)["tokenizer"]["lower_case"]
    assert open(os.path.join(out, "vocab.txt")).read() == open(os.path.join(init,
                                                                           "vocab.txt")).read()
    trained = runs.load_encoder(out).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(trained, encoder.get_weights()))

    # The same command again: the same configuration (no conflict), nothing left to train.
    again = pretrain(continued(init, base.data.corpus, max_sequence_length=32), out,
                     verbose=0)
    assert again["step"] == 2 and "is a finished run" in capsys.readouterr().out
    assert json.loads(json.dumps(runs.read_config(out))) == config

    # `tfmask show` names the run it continued (fine-tuning reads it as any --init run).
    assert f"continued from {init} (pretrain run)" in show.format_text(show.describe(out))


def test_a_checkpoint_without_an_mlm_head_gets_a_fresh_one(tmp_path, capsys):
    """An import of a Hugging Face folder without `cls.predictions.*`: its encoder at step 0
    under a new head (said in the log); `--seq-len` past its 16 positions is refused."""
    from tfmask.interop import import_checkpoint

    source = write_hf_folder(tmp_path / "hf", hf_state_dict(google_bert_tensors(seed=4,
                                                                                mlm=False)))
    init = str(tmp_path / "import")
    import_checkpoint(source, init)
    assert not os.path.exists(os.path.join(init, "masked_lm.keras"))
    corpus = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    corpus.write_text("".join(" ".join(rng.choice(TINY_VOCAB[5:], 8)) + "\n" for _ in range(64)))

    with pytest.raises(ConfigError, match="--seq-len 128 exceeds the encoder's 16 positions"):
        continued(init, [str(corpus)]).validate()
    probe = continued(init, [str(corpus)], max_sequence_length=16)
    continue_from_init(probe)
    encoder, model = build_masked_lm(probe)
    assert all(np.array_equal(a, b) for a, b in zip(encoder.get_weights(),
                                                    runs.load_encoder(init).get_weights()))
    assert model.mlm_head.built and model.encoder is encoder
    assert "fresh, randomly initialised MLM head" in capsys.readouterr().out
    assert probe.train.learning_rate == 5e-5  # continued pretraining's, not the preset's


def test_a_fresh_head_is_warmed_up_alone_first(tmp_path, capsys):
    """With a fresh head, `pretrain --init` first trains the head alone (`--head-warmup-steps`):
    the encoder's weights come out of the warm-up untouched, the head's changed and its
    held-out loss lower; the run records it in head_warmup.json; 0 turns it off."""
    from tfmask.interop import import_checkpoint
    from tfmask.train.pretraining import warm_up_head

    source = write_hf_folder(tmp_path / "hf", hf_state_dict(google_bert_tensors(seed=4,
                                                                                mlm=False)))
    init = str(tmp_path / "import")
    import_checkpoint(source, init)
    corpus = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    corpus.write_text("".join(" ".join(rng.choice(TINY_VOCAB[5:], 8)) + "\n" for _ in range(64)))
    e = continued(init, [str(corpus)], max_sequence_length=16, eval_holdout=0.2)
    e.train.head_warmup_steps = 6
    continue_from_init(e)
    keras.utils.set_random_seed(0)  # the fresh head's weights (else they follow test order)
    encoder, model = build_masked_lm(e)
    tokenizer = runs.load_tokenizer(init)
    kwargs = dict(batch_size=8, seed=0)
    train = pretraining_data.pretraining_dataset(tokenizer, e.data, e.masking, training=True,
                                                 **kwargs)
    held_out = pretraining_data.pretraining_dataset(tokenizer, e.data, e.masking,
                                                    training=False, **kwargs).repeat()
    before = [w.copy() for w in encoder.get_weights()]
    head_before = [w.copy() for w in model.mlm_head.get_weights()]
    summary = warm_up_head(model, e, train, held_out, 2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, encoder.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(head_before,
                                                         model.mlm_head.get_weights()))
    assert encoder.trainable
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert "Warming up the fresh MLM head: 6 steps" in capsys.readouterr().out

    out = str(tmp_path / "continued")
    pretrain(e, out, verbose=0)
    recorded = runs.read_json(os.path.join(out, "head_warmup.json"))
    assert recorded["head_warmup_steps"] == 6
    assert "Warming up the fresh MLM head" in capsys.readouterr().out
    e.train.head_warmup_steps = 0
    build_masked_lm(e)
    assert "No head warm-up" in capsys.readouterr().out
