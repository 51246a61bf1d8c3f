"""Fine-tuning end to end: heads, optimizer, runs, metrics against seqeval, CLI errors.

Two small runs are shared by the session (conftest.py: embedded data, a few hundred examples,
random bert_tiny encoders); the tests read their run directories instead of training again.
"""

from __future__ import annotations

import json
import os
import re

import keras
import numpy as np
import pytest

from helpers import (VOCAB, finetune_experiment, google_bert_tensors, hf_state_dict,
                     randomize_weights, write_hf_folder)
from tfmask.interop import import_checkpoint
from tfmask.text import readers
from tfmask.train import finetuning, plots
from tfmask.cli import main
from tfmask.config import FinetuneExperiment
from tfmask.model.encoder import BertEncoder
from tfmask.model.heads import SequenceClassifier, TokenClassifier
from tfmask.train.optimizer import build_optimizer, layer_depth
from tfmask.text.examples import load_split
from tfmask.train.evaluation import Evaluator
from tfmask.model.encoder import with_dropout
from tfmask import runs

TINY_CONLL = """-DOCSTART- -X- -X- O

Alice NNP B-NP B-PER
visited VBD B-VP O
Paris NNP B-NP B-LOC
. . O O

The DT B-NP O
Acme NNP I-NP B-ORG
Corporation NNP I-NP I-ORG
hired VBD B-VP O
Bob NNP B-NP B-PER
Smith NNP I-NP I-PER
. . O O

Bob NNP B-NP B-PER
flew VBD B-VP O
to TO B-PP O
New NNP B-NP B-LOC
York NNP I-NP I-LOC
with IN B-PP O
Alice NNP B-NP B-PER
. . O O
"""


# --- heads ------------------------------------------------------------------------------------

def _encoder():
    return BertEncoder(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16,
                       intermediate_dim=32)


def _inputs(batch=3, length=7):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 40, (batch, length)).astype("int32")
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids),
            "padding_mask": np.ones_like(ids)}


@pytest.mark.parametrize("cls,count,shape", [(TokenClassifier, 5, (3, 7, 5)),
                                             (SequenceClassifier, 3, (3, 3))])
def test_heads_shapes_and_saving(cls, count, shape, tmp_path):
    model = cls(_encoder(), count, dropout=0.2)
    out = model(_inputs())
    assert tuple(out.shape) == shape and out.dtype == "float32"
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is cls and reloaded.dropout == 0.2
    np.testing.assert_allclose(reloaded(_inputs()), out, atol=1e-6)
    assert set(model.get_config()) == {"name", "trainable", "encoder", "dropout", "num_classes"}


def test_token_classifier_reads_the_config_key_of_earlier_files():
    """`.keras` files of tfmask 0.1 name a TokenClassifier's count `num_labels`."""
    config = TokenClassifier(_encoder(), 4).get_config()
    config["num_labels"] = config.pop("num_classes")
    rebuilt = TokenClassifier.from_config(config)
    assert rebuilt.num_classes == 4 and rebuilt.output_shape[-1] == 4


def test_freezing_takes_effect_only_at_compile():
    """Flipping `trainable` after compile changes nothing; `finetune` compiles
    once per phase."""
    model = SequenceClassifier(_encoder(), 2)
    x, y = _inputs(), np.array([0, 1, 0])

    def encoder_weights():
        return [w.numpy().copy() for w in model.encoder.trainable_weights] or [
            w.numpy().copy() for w in model.encoder.weights]

    model.encoder.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before_encoder = encoder_weights()
    before_head = model.get_layer("logits").kernel.numpy().copy()
    model.fit(x, y, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before_encoder, encoder_weights()))
    assert not np.array_equal(before_head, model.get_layer("logits").kernel.numpy())
    model.encoder.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0)
    assert not all(np.array_equal(a, b) for a, b in zip(before_encoder, encoder_weights()))


def test_encoder_dropout_override_keeps_the_weights():
    """--encoder-dropout rebuilds the encoder with the new rate and the same weights: the
    same function at inference, a different amount of noise in training."""
    encoder = _encoder()
    randomize_weights(encoder, stddev=0.3, seed=2)
    rebuilt = with_dropout(encoder, 0.0)
    assert (encoder.dropout, rebuilt.dropout) == (0.1, 0.0)
    x = _inputs()
    # (not bit-equal: without dropout Keras's attention takes its fused dot-product path)
    np.testing.assert_allclose(rebuilt(x)["sequence_output"], encoder(x)["sequence_output"],
                               atol=1e-5)
    # dropout 0: training mode is deterministic, and equal to inference
    np.testing.assert_allclose(rebuilt(x, training=True)["sequence_output"],
                               rebuilt(x)["sequence_output"], atol=1e-6)
    assert not np.allclose(encoder(x, training=True)["sequence_output"],
                           encoder(x)["sequence_output"], atol=1e-3)


def test_layer_depth():
    assert layer_depth("token_embedding/embeddings", 2) == 0
    assert layer_depth("embeddings_layer_norm/gamma", 2) == 0
    assert layer_depth("transformer_layer_0/self_attention/query/kernel", 2) == 1
    assert layer_depth("transformer_layer_1/output_dense/bias", 2) == 2
    assert layer_depth("pooler_dense/kernel", 2) == 3
    assert layer_depth("logits/kernel", 2) == 3


def test_layer_wise_decay_scales_each_layer_update():
    """Adam's first step moves every weight by ~lr (|m/sqrt(v)| = 1): so the size of the
    first update of each variable measures its effective learning rate. The segment
    embedding's row 0 is used by all 21 tokens: with Keras's sparse-gradient Adam it moved
    3.5x too far (see `densify_sparse_gradient`)."""
    model = TokenClassifier(_encoder(), 4, dropout=0.0)
    randomize_weights(model, stddev=0.3, seed=1)
    optimizer = build_optimizer(1e-3, total_steps=10, warmup_steps=0, weight_decay=0.0,
                                clipnorm=None, layer_decay=0.5, num_layers=2)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    x = _inputs()
    model.train_on_batch(x, np.ones((3, 7), "int32"))
    for w in model.trainable_weights:
        if w.path.startswith("pooler_dense") or w.path.endswith("key/bias"):
            continue  # no gradient: the token head has no pooler; softmax ignores a key bias
        step = np.abs(w.numpy() - before[w.path]).max()
        expected = 1e-3 * 0.5 ** (3 - layer_depth(w.path, 2))
        assert step == pytest.approx(expected, rel=0.02), w.path


# --- runs -------------------------------------------------------------------------------------

def test_ner_run_directory(ner_run):
    run, best, _ = ner_run
    for name in ("config.json", "vocab.txt", "labels.txt", "model.keras", "metrics.json",
                 "history.json", "history.png", "per_type_f1.png", "best.weights.h5"):
        assert os.path.exists(os.path.join(run, name)), name
    assert readers.load_labels(os.path.join(run, "labels.txt"))[0] == "O"
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert {"precision", "recall", "f1", "per_type", "epoch"} <= set(metrics)
    assert set(metrics["per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    assert metrics["f1"] == best["f1"]
    history = json.load(open(os.path.join(run, "history.json")))
    assert [r["epoch"] for r in history] == [1, 2] and "val_f1" in history[0]


def test_validation_f1_equals_seqeval(ner_run, data_dir):
    """The metric the callback reports is seqeval's (default mode) on the same predictions."""
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    run, best, _ = ner_run
    experiment, model, tokenizer = runs.load_finetuned(run)
    examples, _ = load_split(experiment, data_dir["ner_valid"],
                                        labels=experiment.labels)
    evaluator = Evaluator("ner", examples, experiment.labels, tokenizer,
                                     experiment.data.max_sequence_length)
    predicted, _ = evaluator.predict(model)
    true = [[experiment.labels[i] for i in s] for s in examples.label_ids]
    pred = [[experiment.labels[i] for i in s] for s in predicted]
    assert [len(p) for p in pred] == [len(t) for t in true]  # every word labelled once
    assert 0 < best["f1"] < 1  # a half-trained model: errors for the metrics to disagree on
    assert best["f1"] == seqeval_metrics.f1_score(true, pred)
    assert best["precision"] == seqeval_metrics.precision_score(true, pred)
    assert best["recall"] == seqeval_metrics.recall_score(true, pred)
    report = seqeval_metrics.classification_report(true, pred, output_dict=True)
    for entity_type, scores in best["per_type"].items():
        assert scores["f1"] == report[entity_type]["f1-score"]
        assert scores["support"] == report[entity_type]["support"]


def test_evaluate_cli_reproduces_the_validation_metrics(ner_run, data_dir, capsys):
    run, best, _ = ner_run
    assert main(["evaluate", run, "--data", data_dir["ner_valid"]]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("precision", "recall", "f1", "per_type"):
        assert printed[key] == best[key]
    written = json.load(open(os.path.join(run, "evaluations", "valid.json")))
    assert written["f1"] == best["f1"]


def test_rerun_resumes_finished_run_and_refuses_other_config(ner_run):
    run, best, experiment = ner_run
    again = finetuning.finetune(FinetuneExperiment.from_dict(experiment.to_dict()), run,
                                verbose=0)
    assert again["f1"] == best["f1"]  # nothing left to train: the same best epoch
    changed = FinetuneExperiment.from_dict(experiment.to_dict())
    changed.train.learning_rate = 1e-4
    with pytest.raises(runs.RunConflictError,
                       match=r"train.learning_rate: 0.002 -> 0.0001"):
        finetuning.finetune(changed, run, verbose=0)


def test_sentiment_run_with_freezing_masking_and_layer_decay(sentiment_run, data_dir, capsys):
    run, best, _ = sentiment_run
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(best)
    assert os.path.exists(os.path.join(run, "confusion_matrix.png"))
    history = json.load(open(os.path.join(run, "history.json")))
    assert [r["epoch"] for r in history] == [1, 2]  # frozen phase, then the full model
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["train"]["mask_rate"] == 0.15 and config["labels"] == ["negative", "positive"]
    assert config["encoder"]["dropout"] == 0.05  # --encoder-dropout, recorded and saved
    assert runs.load_finetuned(run)[1].encoder.dropout == 0.05
    assert main(["evaluate", run, "--data", data_dir["sentiment_dev"]]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["accuracy"] == best["accuracy"]
    assert printed["macro_f1"] == best["macro_f1"]


def test_tiny_model_overfits_a_tiny_ner_set(tmp_path, capsys):
    path = tmp_path / "tiny.conll"
    path.write_text(TINY_CONLL)
    e = finetune_experiment("ner", str(path), str(path), epochs=8, batch_size=2,
                    learning_rate=3e-3, dropout=0.0, warmup_steps=0, weight_decay=0.0,
                    vocabulary_size=100)
    best = finetuning.finetune(e, str(tmp_path / "run"))  # verbose=None
    assert best["f1"] == 1.0
    out = capsys.readouterr().out
    assert "Precision: float32 (as asked)." in out.splitlines()
    assert len(re.findall(r"^First training step after \d+\.\d s \(", out, re.M)) == 1
    history = json.load(open(tmp_path / "run" / "history.json"))
    assert [("first_step_seconds" in r) for r in history] == [True] + [False] * 7  # one fit
    assert 0 < history[0]["first_step_seconds"] < history[0]["train_seconds"]
    # stdout is not a terminal here, so progress comes as lines: one at each epoch end.
    lines = [line for line in out.splitlines() if "done in" in line]
    assert [line.split("  loss")[0] for line in lines] == [
        f"epoch {i}/8  step 2/2" for i in range(1, 9)]  # 3 sentences, batches of 2
    number = r"\d+\.\d{4}"
    assert all(re.search(rf"  accuracy {number}  val_loss {number}  val_precision {number}  "
                         rf"val_recall {number}  val_f1 {number}  lr ", line) for line in lines)
    assert [r["step"] for r in _train_steps(tmp_path / "run")] == list(range(1, 17))


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_finetune_from_an_imported_checkpoint(tmp_path, precision):
    """--init takes an `tfmask import` run: the classifier starts from the imported encoder,
    and trains under --precision although the imported `.keras` file says float32."""
    t = google_bert_tensors(seed=4)
    source = write_hf_folder(tmp_path / "hf", hf_state_dict(t))
    import_checkpoint(source, str(tmp_path / "imported"))
    conll = tmp_path / "tiny.conll"
    conll.write_text(TINY_CONLL)
    e = finetune_experiment("ner", str(conll), str(conll), epochs=1, learning_rate=1e-6,
                    init=str(tmp_path / "imported"), precision=precision)
    e.data.max_sequence_length = 16
    finetuning.finetune(e, str(tmp_path / "run"), verbose=0)
    assert keras.config.dtype_policy().name == "float32"  # the run's policy does not leak
    _, model, tokenizer = runs.load_finetuned(str(tmp_path / "run"))
    assert model.encoder.dtype_policy.name == precision  # what it trained under
    assert model.encoder.get_layer("transformer_layer_0").compute_dtype == (
        "bfloat16" if precision == "mixed_bfloat16" else "float32")
    assert tokenizer.vocab == VOCAB
    embeddings = model.encoder.get_layer("token_embedding").embeddings.numpy()
    np.testing.assert_allclose(embeddings, t["bert/embeddings/word_embeddings"], atol=1e-4)
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["encoder"]["hidden_dim"] == 8 and config["train"]["init"].endswith("imported")
    assert config["train"]["precision"] == precision


# --- errors -----------------------------------------------------------------------------------

def test_malformed_training_file_is_one_line_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.conll"
    bad.write_text("Alice B-PER\nvisited O\nParis B-LOC extra\n")
    code = main(["finetune", "ner", "--train", str(bad), "--valid", str(bad),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"tfmask finetune: error: {bad}:3:")


def test_validation_tag_unseen_in_training_names_its_line(tmp_path, capsys):
    train, valid = tmp_path / "train.conll", tmp_path / "valid.conll"
    train.write_text("Alice B-PER\nsmiled O\n")
    valid.write_text("Bob B-PER\n\nin O\nParis B-LOC\n")
    code = main(["finetune", "ner", "--train", str(train), "--valid", str(valid),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{valid}:4: tag 'B-LOC' does not occur in the training data" in err


def test_train_without_valid_is_refused(tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\ngood\t1\n")
    assert main(["finetune", "sentiment", "--train", str(train), "--out",
                 str(tmp_path / "run")]) == 2
    assert "--valid is required with --train" in capsys.readouterr().err


def test_ner_training_loss_is_the_mean_over_labelled_words():
    """The NER dataset's weights (1 on each word's first piece) with the loss `compile_model`
    uses give the mean cross-entropy over labelled words only, padding and other pieces
    left out (Keras's default reduction would divide by every slot)."""
    from tfmask.train.optimizer import WeightedMeanCrossEntropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 6, 4)).astype("float32")
    y = rng.integers(0, 4, (2, 6)).astype("int32")
    weight = np.array([[0, 1, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0]], "float32")
    loss = WeightedMeanCrossEntropy()(y, logits, weight)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, y[..., None], -1)[..., 0][weight > 0].mean()
    assert float(loss) == pytest.approx(expected, rel=1e-5)


# --- progress, per-step curves and plots ------------------------------------------------------

def _train_steps(run):
    with open(os.path.join(run, "train_steps.json")) as fh:
        return json.load(fh)


@pytest.mark.parametrize("fixture", ["ner_run", "sentiment_run"])
def test_history_carries_the_training_loss_every_few_steps(fixture, request):
    run, _, _ = request.getfixturevalue(fixture)
    with open(os.path.join(run, "history.json")) as fh:
        history = json.load(fh)
    steps = _train_steps(run)
    assert {tuple(r) for r in steps} == {("step", "epoch", "loss", "learning_rate")}
    assert [r["step"] for r in steps] == sorted({r["step"] for r in steps})  # one run, counted on
    assert sorted({r["epoch"] for r in steps}) == [r["epoch"] for r in history] == [1, 2]
    starts = [0]
    for epoch in history:
        mine = [r for r in steps if r["epoch"] == epoch["epoch"]]
        assert len(mine) > 2  # more than one point an epoch
        # Each record's loss is the mean over its interval, so the interval-weighted mean over
        # an epoch is the epoch's loss that history.json (Keras's epoch mean) holds...
        sizes = np.diff([starts[-1]] + [r["step"] for r in mine])
        assert np.dot(sizes, [r["loss"] for r in mine]) / sizes.sum() == pytest.approx(
            epoch["loss"], rel=1e-4)
        # ...and its last record is at its last step: the rate after it is the epoch's.
        assert mine[-1]["learning_rate"] == epoch["learning_rate"]
        starts.append(mine[-1]["step"])


def test_sentiment_plots_name_the_classes(sentiment_run):
    """The embedded reviews are labelled negative/positive: the metrics and the confusion
    matrix say so (the run plots with the labels its metrics are keyed by)."""
    run, best, _ = sentiment_run
    labels = runs.load_labels(run)
    assert labels == ["negative", "positive"]
    assert list(best["per_class"]) == labels
    assert os.path.getsize(os.path.join(run, "confusion_matrix.png")) > 0
    fig = plots.plot_confusion_matrix(best["confusion_matrix"], labels,
                                      os.path.join(run, "again.png"))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert [t.get_text() for t in ax.get_yticklabels()] == labels


def _history(values, metric="f1"):
    return [{"epoch": i + 1, "loss": 1.0 / (i + 1), "val_loss": 1.1 / (i + 1),
             f"val_{metric}": v, "learning_rate": 1e-4 * (1 - i / len(values))}
            for i, v in enumerate(values)]


def test_finetune_plot_marks_the_best_epoch_and_shows_the_learning_rate(tmp_path):
    records = _history([0.5, 0.8, 0.7])
    steps = [{"step": s, "epoch": (s - 1) // 10 + 1, "loss": 1.0 / s,
              "learning_rate": 1e-4 * (1 - s / 30)} for s in range(1, 31)]
    fig = plots.plot_finetune_history(records, str(tmp_path / "h.png"), "f1", steps=steps)
    loss, metric, rate = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss", "validation f1", "learning rate"]
    best = [line for line in metric.get_lines() if line.get_marker() == "*"]
    assert [(list(b.get_xdata()), list(b.get_ydata())) for b in best] == [([20], [0.8])]
    assert "best: epoch 2, 0.8000" in [t.get_text() for t in metric.get_legend().get_texts()]
    assert list(rate.get_lines()[0].get_ydata()) == [s["learning_rate"] for s in steps]
    # Validation at epoch ends (steps 10, 20, 30), the training loss at every record.
    assert list(metric.get_lines()[0].get_xdata()) == [10, 20, 30]
    assert len(loss.get_lines()[0].get_xdata()) == 30
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finetune_plot_of_one_epoch_has_readable_axes(tmp_path):
    """One epoch: the x axis spans the steps (or one epoch tick without them), not a
    0.96-1.04 range around a single dot; a score's axis stays inside [0, 1]."""
    steps = [{"step": s, "epoch": 1, "loss": 1.0 / s, "learning_rate": 1e-4} for s in (5, 10)]
    fig = plots.plot_finetune_history(_history([0.99], "accuracy"), str(tmp_path / "a.png"),
                                      "accuracy", steps=steps)
    for ax in fig.axes:
        assert ax.get_xlim() == pytest.approx((0, 10.2))
    assert fig.axes[1].get_ylim() == pytest.approx((0.94, 1.0))
    fig = plots.plot_finetune_history(_history([0.5], "accuracy"), str(tmp_path / "b.png"),
                                      "accuracy")
    for ax in fig.axes:
        assert ax.get_xlim() == pytest.approx((0.5, 1.5))
        assert list(ax.get_xticks()) == [1]
