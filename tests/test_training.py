"""Schedule, optimizer, strategy, the MLM loss across replicas, learning, HistoryRecorder,
ProgressLogger, StepRecorder."""

import json
import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import randomize_weights, run_config_test, two_cpu_strategy
from tfmask.train import plots
from tfmask.train.callbacks import (HistoryRecorder, ProgressLogger, StepRecorder,
                                    progress_callbacks, quiet_unused_pooler_warning)
from tfmask.train.distribute import choose_strategy
from tfmask.train.optimizer import WarmupLinearDecay, build_optimizer, compile_model
from tfmask.model.encoder import BertEncoder
from tfmask.model.heads import MaskedLM

MASK_ID = 4  # SPECIAL_TOKENS = [PAD], [UNK], [CLS], [SEP], [MASK]

# `fit` on a tf.data.Dataset warns that shuffle=True is ignored: the datasets here are fixed.
pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _masked_lm(vocabulary_size=40, num_layers=1, hidden_dim=32, seed=0):
    keras.utils.set_random_seed(seed)
    encoder = BertEncoder(vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=2,
                          hidden_dim=hidden_dim, intermediate_dim=2 * hidden_dim,
                          max_sequence_length=16, dropout=0.0)
    return MaskedLM(encoder)


# ----------------------------------------------------------------------------------------------
# Learning-rate schedule
# ----------------------------------------------------------------------------------------------
def test_warmup_linear_decay_values():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=110)
    values = {step: float(_np(schedule(step))) for step in (0, 1, 5, 10, 60, 109, 110, 200)}
    assert values[0] == 0.0
    assert values[1] == pytest.approx(1e-4)
    assert values[5] == pytest.approx(5e-4)
    assert values[10] == pytest.approx(1e-3)  # peak at the end of warm-up
    assert values[60] == pytest.approx(5e-4)  # halfway down
    assert values[109] == pytest.approx(1e-5)
    assert values[110] == 0.0  # zero at total_steps
    assert values[200] == 0.0  # and never negative after it
    # Monotone up, then monotone down.
    curve = [float(_np(schedule(s))) for s in range(0, 111)]
    assert np.all(np.diff(curve[:11]) > 0) and np.all(np.diff(curve[10:]) < 0)


def test_warmup_linear_decay_without_warmup_starts_at_peak():
    schedule = WarmupLinearDecay(2e-3, warmup_steps=0, total_steps=100)
    assert float(_np(schedule(0))) == pytest.approx(2e-3)
    assert float(_np(schedule(50))) == pytest.approx(1e-3)


def test_warmup_linear_decay_serialization():
    schedule = run_config_test(WarmupLinearDecay, dict(
        peak_learning_rate=3e-4, warmup_steps=7, total_steps=70), base_keys=())
    assert float(_np(schedule(7))) == pytest.approx(3e-4)
    # Inside an optimizer config, as in a `.keras` file.
    optimizer = build_optimizer(3e-4, total_steps=70, warmup_steps=7)
    revived = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(revived._learning_rate, WarmupLinearDecay)
    assert revived._learning_rate.get_config() == schedule.get_config()


# ----------------------------------------------------------------------------------------------
# Optimizer
# ----------------------------------------------------------------------------------------------
def test_build_optimizer_settings():
    optimizer = build_optimizer(1e-3, total_steps=200)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == pytest.approx(0.01)
    assert optimizer.global_clipnorm == 1.0
    assert optimizer.epsilon == pytest.approx(1e-6)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupLinearDecay)
    assert (schedule.peak_learning_rate, schedule.warmup_steps, schedule.total_steps) == (
        1e-3, 20, 200)  # warmup_steps=-1: 10% of the steps


def _should_decay(path: str) -> bool:
    """BERT decays kernels and embeddings, never LayerNorm gamma/beta or biases."""
    leaf = path.rsplit("/", 1)[-1]
    assert leaf in ("kernel", "embeddings", "bias", "gamma", "beta"), path
    return leaf in ("kernel", "embeddings")


def test_build_optimizer_weight_decay_exclusions():
    model = _masked_lm(num_layers=2)
    optimizer = build_optimizer(1e-3, total_steps=100)
    optimizer.build(model.trainable_variables)
    decided = {v.path: optimizer._use_weight_decay(v) for v in model.trainable_variables}
    expected = {path: _should_decay(path) for path in decided}
    assert decided == expected
    # Every kind is present, the tied output bias included.
    assert decided["mlm_head/bias"] is False
    assert decided["token_embedding/embeddings"] is True
    assert decided["transformer_layer_1/self_attention/query/kernel"] is True
    assert decided["transformer_layer_1/output_layer_norm/gamma"] is False
    assert decided["embeddings_layer_norm/beta"] is False


def test_weight_decay_applies_to_kernels_only():
    # With zero gradients Adam's update is 0, so only decoupled weight decay moves weights.
    model = _masked_lm()
    optimizer = build_optimizer(0.1, total_steps=100, warmup_steps=0,
                                         weight_decay=0.5, clipnorm=None)
    variables = model.trainable_variables
    before = {v.path: _np(v).copy() for v in variables}
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    for v in variables:
        factor = 1.0 - 0.1 * 0.5 if _should_decay(v.path) else 1.0
        np.testing.assert_allclose(_np(v), before[v.path] * factor, rtol=1e-6, atol=1e-7,
                                   err_msg=v.path)


def _torch_adamw_reference(weights, gradients, learning_rates, weight_decay, eps=1e-6,
                           beta_1=0.9, beta_2=0.999):
    """PyTorch's AdamW (decoupled decay, bias correction, epsilon after the correction) in
    float64 NumPy, written from its documented update rule."""
    p = weights.astype("float64")
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, (g, lr) in enumerate(zip(gradients, learning_rates), start=1):
        p = p * (1 - lr * weight_decay)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        p = p - lr / (1 - beta_1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - beta_2 ** t) + eps)
    return p


def test_adamw_matches_pytorch_update_rule_for_small_gradients():
    """Gradients of 1e-7..1e-5 (embedding rows, LayerNorm weights): where Keras's epsilon
    placement (before v's bias correction) would damp the first steps up to 32x, the
    optimizer follows PyTorch / Hugging Face AdamW."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 3)).astype("float32")
    gradients = [(rng.normal(size=(5, 3)) * 10.0 ** rng.uniform(-7, -5, size=(5, 3)))
                 .astype("float32") for _ in range(4)]
    kernel = keras.Variable(start, name="kernel")
    optimizer = build_optimizer(1e-2, total_steps=8, warmup_steps=0,
                                         weight_decay=0.1, clipnorm=None)
    for g in gradients:
        optimizer.apply_gradients([(tf.constant(g), kernel)])
    rates = [1e-2 * (8 - step) / 8 for step in range(4)]  # linear decay, no warm-up
    expected = _torch_adamw_reference(start, gradients, rates, weight_decay=0.1)
    np.testing.assert_allclose(_np(kernel), expected, rtol=1e-6, atol=1e-7)
    assert np.abs(expected - start).max() > 1e-3  # the steps are large enough to check


def test_global_clip_uses_the_norm_of_the_dense_gradient():
    """An embedding row used twice in a batch gets one summed gradient: the global norm that
    clipping divides by is the norm of that dense gradient, as in BERT and PyTorch (over the
    IndexedSlices' separate slices it would be sqrt(2) smaller here)."""
    table = keras.Variable(np.zeros((4, 2), "float32"), name="embeddings")
    optimizer = build_optimizer(1e-3, total_steps=10, warmup_steps=0,
                                         weight_decay=0.0, clipnorm=1.0)
    rows = tf.IndexedSlices(tf.constant([[3.0, 4.0], [3.0, 4.0]]), tf.constant([1, 1]),
                            dense_shape=tf.constant([4, 2]))
    optimizer.apply_gradients([(rows, table)])
    dense = np.array([[0, 0], [6, 8], [0, 0], [0, 0]], "float32")  # norm 10
    first_moment = _np(optimizer._momentums[optimizer._get_variable_index(table)])
    np.testing.assert_allclose(first_moment, (1 - optimizer.beta_1) * dense / 10.0, rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# Strategy
# ----------------------------------------------------------------------------------------------
def test_choose_strategy():
    with pytest.raises(ValueError, match="strategy"):
        choose_strategy("mirored")
    assert choose_strategy("default") is tf.distribute.get_strategy()
    if not tf.config.list_logical_devices("GPU"):
        assert choose_strategy("auto") is tf.distribute.get_strategy()
    mirrored = choose_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 2


# ----------------------------------------------------------------------------------------------
# The MLM loss: mean over masked tokens of the global batch, for 1 or 2 replicas
# ----------------------------------------------------------------------------------------------
def _uneven_batch(vocabulary_size=40, length=8, seed=0):
    """A global batch of 4 whose first half has 8 masked slots and second half 2."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, vocabulary_size, (4, length)).astype("int32")
    padding_mask = np.ones((4, length), bool)
    padding_mask[3, 5:] = False
    token_ids[3, 5:] = 0
    positions = np.array([[1, 2, 4, 6], [1, 3, 5, 7], [2, 0, 0, 0], [3, 0, 0, 0]], "int32")
    raw_weights = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0]], "float32")
    mask_ids = np.take_along_axis(token_ids, positions, axis=1) * raw_weights.astype("int32")
    rows = np.arange(4)[:, None]
    token_ids[rows, positions] = np.where(raw_weights > 0, MASK_ID, token_ids[rows, positions])
    x = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
         "padding_mask": padding_mask, "mask_positions": positions}
    return x, mask_ids.astype("int32"), raw_weights


def _token_losses(model, x, y):
    logits = _np(model(x)).astype("float64")  # [B, P, V]
    log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(
        -1, keepdims=True)) - logits.max(-1, keepdims=True)
    return -np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]  # [B, P]


def _as_dataset(x, y, sample_weight):
    # padding_mask goes in as int32 (the encoder casts it back to bool): Keras 3.15's first
    # fit/evaluate under a multi-replica strategy reduces a whole input batch with MEAN
    # (`TensorFlowTrainer._maybe_symbolic_build`), which fails on bool tensors. See
    # test_keras_cannot_distribute_bool_inputs.
    x = dict(x, padding_mask=x["padding_mask"].astype("int32"))
    return tf.data.Dataset.from_tensors((x, y, sample_weight))


def _single_and_mirrored(seed=3):
    """The same MaskedLM twice: on the default strategy and mirrored over 2 logical CPUs.

    Weights are N(0, 0.2) so per-token losses spread widely (at BERT's init every token's loss
    is close to ln V and any way of averaging gives nearly the same number).
    """
    single = _masked_lm(vocabulary_size=40, hidden_dim=16, seed=seed)
    randomize_weights(single, stddev=0.2, seed=seed)
    strategy = two_cpu_strategy()
    with strategy.scope():
        mirrored = _masked_lm(vocabulary_size=40, hidden_dim=16, seed=seed + 1)
    mirrored.set_weights(single.get_weights())
    return single, mirrored, strategy


def test_mirrored_strategy_gives_the_same_loss_and_update_as_one_device():
    """The loss over masked positions is identical on one device and across replicas."""
    quiet_unused_pooler_warning()
    x, y, raw_weights = _uneven_batch()
    sample_weight = raw_weights  # as the pipelines yield them: 1 on a used slot, else 0
    dataset = _as_dataset(x, y, sample_weight)
    single, mirrored, strategy = _single_and_mirrored()

    # The batch is split in contiguous halves: rows 0-1 (8 masked slots) and rows 2-3 (2).
    per_replica = strategy.experimental_local_results(
        next(iter(strategy.experimental_distribute_dataset(dataset)))[2])
    shares = [float(_np(w).sum() / sample_weight.sum()) for w in per_replica]
    assert shares == pytest.approx([0.8, 0.2])

    # The batch discriminates: a mean per replica, averaged, is not the masked-token mean.
    losses = _token_losses(single, x, y)
    token_mean = float((losses * raw_weights).sum() / raw_weights.sum())
    replica_means = [(losses[rows] * raw_weights[rows]).sum() / raw_weights[rows].sum()
                     for rows in (slice(0, 2), slice(2, 4))]
    assert abs(np.mean(replica_means) - token_mean) > 0.1

    compile_model(single, keras.optimizers.SGD(learning_rate=0.5), "masked_accuracy")
    with strategy.scope():
        compile_model(mirrored, keras.optimizers.SGD(learning_rate=0.5), "masked_accuracy")
    single_eval = single.evaluate(dataset, verbose=0, return_dict=True)
    mirrored_eval = mirrored.evaluate(dataset, verbose=0, return_dict=True)
    assert single_eval["loss"] == pytest.approx(token_mean, abs=1e-5)  # mean over masked tokens
    assert mirrored_eval["loss"] == pytest.approx(single_eval["loss"], abs=1e-5)
    assert mirrored_eval["masked_accuracy"] == pytest.approx(single_eval["masked_accuracy"],
                                                             abs=1e-6)

    # One SGD step: the same gradients, hence the same weights.
    before = single.get_weights()
    single_fit = single.fit(dataset, epochs=1, verbose=0).history["loss"][0]
    mirrored_fit = mirrored.fit(dataset, epochs=1, verbose=0).history["loss"][0]
    assert mirrored_fit == pytest.approx(single_fit, abs=1e-5)
    moved = max(np.abs(a - b).max() for a, b in zip(single.get_weights(), before))
    assert moved > 1e-3
    for v_single, v_mirrored in zip(single.weights, mirrored.weights):
        assert v_single.path == v_mirrored.path
        np.testing.assert_allclose(_np(v_mirrored), _np(v_single), atol=1e-5, rtol=0,
                                   err_msg=v_single.path)


def test_per_replica_mean_differs_across_replicas():
    """Why the loss normalises over the global batch itself: Keras's per-replica weighted
    mean (`mean_with_sample_weight`) of 0/1 weights gives a different loss on 2 replicas than
    on one device for the same batch, and its default `sum_over_batch_size` is diluted by the
    empty slots; `compile_model`'s loss is the masked-token mean on both."""
    x, y, raw_weights = _uneven_batch()
    dataset = _as_dataset(x, y, raw_weights)
    single, mirrored, strategy = _single_and_mirrored()
    losses = _token_losses(single, x, y)
    token_mean = float((losses * raw_weights).sum() / raw_weights.sum())

    def compile_per_replica_mean(model):
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"))

    compile_per_replica_mean(single)
    with strategy.scope():
        compile_per_replica_mean(mirrored)
    single_loss = single.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    mirrored_loss = mirrored.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    assert single_loss == pytest.approx(token_mean, abs=1e-5)
    assert abs(mirrored_loss - single_loss) > 0.1
    replica_means = [(losses[rows] * raw_weights[rows]).sum() / raw_weights[rows].sum()
                     for rows in (slice(0, 2), slice(2, 4))]
    assert mirrored_loss == pytest.approx(np.mean(replica_means), abs=1e-4)

    single.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    diluted = single.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    assert diluted == pytest.approx(token_mean * raw_weights.mean(), abs=1e-5)

    compile_model(single, keras.optimizers.SGD(0.1), "masked_accuracy")
    with strategy.scope():
        compile_model(mirrored, keras.optimizers.SGD(0.1), "masked_accuracy")
    for model in (single, mirrored):
        loss = model.evaluate(dataset, verbose=0, return_dict=True)["loss"]
        assert loss == pytest.approx(token_mean, abs=1e-5)


def test_gradients_are_summed_over_replicas_before_the_clip():
    """AdamW with a global-norm clip takes the same step on 2 replicas as on one device.

    Keras clips each replica's share of the gradient and only then sums the shares, so with
    the clip active (here: norm 1e-3) 2 replicas would step differently from one device;
    `LayerwiseAdamW` sums first, then clips."""
    quiet_unused_pooler_warning()
    x, y, raw_weights = _uneven_batch()
    dataset = _as_dataset(x, y, raw_weights)
    single, mirrored, strategy = _single_and_mirrored()

    def optimizer():
        return build_optimizer(1e-2, total_steps=10, warmup_steps=0, clipnorm=1e-3)

    compile_model(single, optimizer(), "masked_accuracy")
    with strategy.scope():
        compile_model(mirrored, optimizer(), "masked_accuracy")
    before = single.get_weights()
    single.fit(dataset, epochs=1, verbose=0)
    mirrored.fit(dataset, epochs=1, verbose=0)
    assert max(np.abs(a - b).max() for a, b in zip(single.get_weights(), before)) > 1e-3
    for v_single, v_mirrored in zip(single.weights, mirrored.weights):
        np.testing.assert_allclose(_np(v_mirrored), _np(v_single), atol=1e-6, rtol=0,
                                   err_msg=v_single.path)


@pytest.mark.xfail(strict=True, raises=tf.errors.InvalidArgumentError,
                   reason="Keras 3.15 MEAN-reduces the first input batch under a multi-replica "
                          "strategy; AddN has no bool kernel (keras-team/keras#21172 family)")
def test_keras_cannot_distribute_bool_inputs():
    """Pins the Keras limitation that makes tf.data pipelines feed padding_mask as int32.

    When this starts passing (a fixed Keras), bool padding masks work under MirroredStrategy.
    """
    x, y, raw_weights = _uneven_batch()
    dataset = tf.data.Dataset.from_tensors((x, y, raw_weights))
    _, mirrored, strategy = _single_and_mirrored()
    with strategy.scope():
        compile_model(mirrored, keras.optimizers.SGD(0.1), "masked_accuracy")
    mirrored.evaluate(dataset, verbose=0)


# ----------------------------------------------------------------------------------------------
# It learns (one fit shared by the learning and HistoryRecorder tests)
# ----------------------------------------------------------------------------------------------
def _copy_task(num_rows=64, length=12, num_predictions=3, vocabulary_size=40, seed=0):
    """Each row repeats one token t; masked slots ([MASK]) must be predicted as t from context."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(5, vocabulary_size, num_rows)
    lengths = rng.integers(8, length + 1, num_rows)
    padding_mask = np.arange(length)[None, :] < lengths[:, None]
    token_ids = np.where(padding_mask, tokens[:, None], 0).astype("int32")
    positions = np.stack([np.sort(rng.choice(np.arange(1, n), num_predictions, replace=False))
                          for n in lengths]).astype("int32")
    np.put_along_axis(token_ids, positions, MASK_ID, axis=1)
    x = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
         "padding_mask": padding_mask, "mask_positions": positions}
    mask_ids = np.repeat(tokens[:, None], num_predictions, axis=1).astype("int32")
    return x, mask_ids, np.ones(mask_ids.shape, "float32")


STEPS, STEPS_PER_EPOCH, BATCH, LENGTH = 80, 20, 16, 12
PEAK_LR, WARMUP = 1e-2, 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny MaskedLM (V=40, 1 layer, H=32) fit for 80 steps on the copy task, recording
    history with evaluation data."""
    quiet_unused_pooler_warning()
    run_dir = tmp_path_factory.mktemp("run")
    x, y, w = _copy_task(length=LENGTH)
    dataset = tf.data.Dataset.from_tensor_slices((x, y, w)).repeat().batch(BATCH).map(
        lambda x, y, w: (x, y, w * tf.cast(tf.size(w), tf.float32) / tf.reduce_sum(w)))
    model = _masked_lm(vocabulary_size=40, num_layers=1, hidden_dim=32)
    compile_model(model, build_optimizer(PEAK_LR, total_steps=STEPS, warmup_steps=WARMUP),
                  "masked_accuracy")
    initial = model.evaluate(dataset, steps=4, verbose=0, return_dict=True)
    recorder = HistoryRecorder(str(run_dir), steps_per_epoch=STEPS_PER_EPOCH,
                                        tokens_per_step=BATCH * LENGTH)
    history = model.fit(dataset, steps_per_epoch=STEPS_PER_EPOCH,
                        epochs=STEPS // STEPS_PER_EPOCH, verbose=0, callbacks=[recorder],
                        validation_data=dataset, validation_steps=2)
    final = model.evaluate(dataset, steps=4, verbose=0, return_dict=True)
    return dict(model=model, run_dir=run_dir, initial=initial, final=final,
                logs=history.history)


def test_tiny_masked_lm_learns(trained):
    initial, final = trained["initial"], trained["final"]
    assert initial["loss"] == pytest.approx(math.log(40), abs=0.3)  # near-uniform at init
    assert final["loss"] < 0.4 * initial["loss"], (initial, final)
    assert final["masked_accuracy"] > 0.8


# ----------------------------------------------------------------------------------------------
# HistoryRecorder
# ----------------------------------------------------------------------------------------------
REQUIRED = {"step", "loss", "masked_accuracy", "tokens_per_second", "learning_rate"}


def test_history_recorder_with_validation(trained):
    with open(trained["run_dir"] / "history.json") as fh:
        records = json.load(fh)
    logs = trained["logs"]
    assert [r["step"] for r in records] == [20, 40, 60, 80]
    schedule = WarmupLinearDecay(PEAK_LR, WARMUP, STEPS)
    for i, r in enumerate(records):
        assert REQUIRED | {"eval_loss", "eval_masked_accuracy"} <= set(r)
        assert r["loss"] == pytest.approx(logs["loss"][i])
        assert r["masked_accuracy"] == pytest.approx(logs["masked_accuracy"][i])
        assert r["eval_loss"] == pytest.approx(logs["val_loss"][i])
        assert r["eval_masked_accuracy"] == pytest.approx(logs["val_masked_accuracy"][i])
        # The rate the optimizer will use next: schedule(step).
        assert r["learning_rate"] == pytest.approx(float(_np(schedule(r["step"]))), abs=1e-9)
        assert r["tokens_per_second"] > 0 and math.isfinite(r["tokens_per_second"])
    assert records[-1]["loss"] < records[0]["loss"]
    with open(trained["run_dir"] / "history.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def _record_epochs(recorder, model, epochs, logs):
    recorder.set_model(model)
    for epoch in epochs:
        recorder.on_epoch_begin(epoch)
        recorder.on_train_batch_end(0)
        recorder.on_epoch_end(epoch, logs=logs)


def test_history_recorder_without_validation_and_resume(tmp_path):
    model = _masked_lm(vocabulary_size=20, hidden_dim=16)
    compile_model(model, build_optimizer(1e-3, total_steps=30), "masked_accuracy")
    recorder = HistoryRecorder(str(tmp_path), steps_per_epoch=10, tokens_per_step=64)
    _record_epochs(recorder, model, [0, 1, 2], {"loss": 2.0, "masked_accuracy": 0.5})
    with open(tmp_path / "history.json") as fh:
        records = json.load(fh)
    assert [r["step"] for r in records] == [10, 20, 30]
    for r in records:
        assert REQUIRED <= set(r)
        assert not any(k.startswith("eval_") for k in r)
    assert (tmp_path / "history.png").stat().st_size > 0
    # A run resumed from step 10 keeps the records up to it and appends its own.
    resumed = HistoryRecorder(str(tmp_path), steps_per_epoch=10, tokens_per_step=64,
                                       start_step=10)
    assert [r["step"] for r in resumed.records] == [10]
    _record_epochs(resumed, model, [1], {"loss": 1.5, "masked_accuracy": 0.6})
    with open(tmp_path / "history.json") as fh:
        assert [(r["step"], r["loss"]) for r in json.load(fh)] == [(10, 2.0), (20, 1.5)]


# ----------------------------------------------------------------------------------------------
# ProgressLogger: lines for logs and notebooks (stdout is not a terminal under pytest)
# ----------------------------------------------------------------------------------------------
def _progress_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    return model


def _progress_data(batches, batch_size=4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batches * batch_size, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, (x[:, 0] > 0).astype("int32"))).batch(
        batch_size)


def _printed(capsys):
    return capsys.readouterr().out.strip().splitlines()


NUMBER = r"\d+\.\d{4}"


def test_progress_lines_every_n_steps_within_epochs(capsys):
    logger = ProgressLogger(every_steps=3, every_seconds=None, min_seconds=0)
    _progress_model().fit(_progress_data(10), epochs=2, verbose=0, callbacks=[logger])
    lines = _printed(capsys)
    # Steps 3, 6, 9 of each 10-step epoch, then the epoch line (step 10 is the epoch's end).
    assert [line.split("  loss")[0] for line in lines] == [
        f"epoch {e}/2  step {s}/10" for e in (1, 2) for s in (3, 6, 9, 10)]
    progress = re.compile(rf"epoch 1/2  step 3/10  loss {NUMBER}  accuracy {NUMBER}  "
                          r"lr 5\.00e-02  \d+\.\d\d steps/s  ETA \d+s$")
    assert progress.match(lines[0]), lines[0]
    end = re.compile(rf"epoch 2/2  step 10/10  loss {NUMBER}  accuracy {NUMBER}  "
                     r"lr 5\.00e-02  done in \d+s$")
    assert end.match(lines[-1]), lines[-1]


def test_progress_lines_over_a_run_of_checkpoint_intervals(capsys):
    """Pretraining: a Keras epoch is a checkpoint interval; steps and ETA count over the run,
    with eval results on each interval's line and tokens/s on the others."""
    logger = ProgressLogger(every_fraction=0.3, every_seconds=None, min_seconds=0,
                            tokens_per_step=48, epochs_are_intervals=True)
    data = _progress_data(5)
    _progress_model().fit(data.repeat(), steps_per_epoch=5, epochs=2, verbose=0,
                          validation_data=data, callbacks=[logger])
    lines = _printed(capsys)
    # Every ceil(0.3 x 10) = 3 steps since the last line (an interval's line counts; the
    # first step of an interval only traces): 3, [5], 8, [10].
    assert [line.split("  loss")[0] for line in lines] == [
        "step 3/10", "step 5/10", "step 8/10", "step 10/10"]
    assert re.search(r"steps/s  [\d,]+ tokens/s  ETA \d+s$", lines[0]), lines[0]
    assert re.search(rf"  val_loss {NUMBER}  val_accuracy {NUMBER}  .*done in", lines[1])
    assert "tokens/s" not in lines[1]


@pytest.mark.filterwarnings("ignore:Your input ran out of data")  # how Keras finds the end
def test_progress_lines_by_time_and_with_an_unknown_epoch_length(capsys):
    """every_seconds=0: a line at every step (the first of an epoch only traces). The length
    of an epoch of unknown cardinality shows as the caller's estimate until one has ended."""
    logger = ProgressLogger(every_steps=None, every_seconds=0, min_seconds=0,
                            steps_per_epoch=4)
    data = _progress_data(6).filter(lambda x, y: tf.reduce_sum(y) >= 0)  # cardinality unknown
    assert int(data.cardinality()) < 0
    _progress_model().fit(data, epochs=2, verbose=0, callbacks=[logger])
    positions = [line.split("  loss")[0] for line in _printed(capsys)]
    assert positions == (
        # Not yet known to be the last step, so step 6 gets a progress line too.
        [f"epoch 1/2  step {s}/~4" for s in (2, 3, 4, 5, 6)] + ["epoch 1/2  step 6/6"]
        + [f"epoch 2/2  step {s}/6" for s in (2, 3, 4, 5, 6)])


def test_progress_callbacks_choose_by_verbose(capsys):
    context = dict(steps_per_epoch=7, tokens_per_step=64, epochs_are_intervals=True)
    verbose, callbacks = progress_callbacks(None, **context)  # stdout is captured: no tty
    assert verbose == 0 and len(callbacks) == 1
    assert isinstance(callbacks[0], ProgressLogger)
    assert (callbacks[0].steps_per_epoch, callbacks[0].tokens_per_step) == (7, 64)
    assert progress_callbacks(0, **context) == (0, [])
    assert progress_callbacks(1, **context) == (1, [])  # Keras's live bar
    mine = ProgressLogger(every_steps=100, tokens_per_step=10)
    verbose, (logger,) = progress_callbacks(mine, **context)
    assert verbose == 0 and logger is not mine and mine.steps_per_epoch is None
    assert (logger.every_steps, logger.tokens_per_step, logger.steps_per_epoch,
            logger.epochs_are_intervals) == (100, 10, 7, True)
    with pytest.raises(ValueError, match="verbose must be"):
        progress_callbacks(3)


def test_pretraining_history_plot_has_a_learning_rate_panel(tmp_path):
    records = [{"step": s, "loss": 5.0 - s / 100, "masked_accuracy": s / 1000,
                "learning_rate": 1e-3 * (1 - s / 400), "eval_loss": 5.1 - s / 100,
                "eval_masked_accuracy": s / 1100} for s in (100, 200, 300, 400)]
    fig = plots.plot_history(records, str(tmp_path / "history.png"))
    assert [ax.get_title() for ax in fig.axes] == ["MLM loss", "masked-token accuracy",
                                                   "learning rate"]
    (line,) = fig.axes[2].get_lines()
    assert list(line.get_ydata()) == [r["learning_rate"] for r in records]
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _steps_epoch(recorder, epoch, running_means):
    recorder.on_epoch_begin(epoch)
    for batch, mean in enumerate(running_means):
        recorder.on_train_batch_end(batch, {"loss": mean})
    recorder.on_epoch_end(epoch, {"loss": running_means[-1]})


def test_step_recorder_interval_means_and_resume(tmp_path):
    model = _progress_model()
    recorder = StepRecorder(str(tmp_path), every=2)
    recorder.set_model(model)
    # Batch losses 4, 2, 3, 1, 5 -> Keras's running means 4, 3, 3, 2.5, 3.
    _steps_epoch(recorder, 0, [4.0, 3.0, 3.0, 2.5, 3.0])
    with open(tmp_path / "train_steps.json") as fh:
        records = json.load(fh)
    assert [(r["step"], r["epoch"], r["loss"]) for r in records] == [
        (2, 1, 3.0), (4, 1, 2.0), (5, 1, 5.0)]  # means of (4, 2), (3, 1), (5)
    assert all(r["learning_rate"] == pytest.approx(0.05) for r in records)
    # Resumed after epoch 1: its records stay and the count goes on from step 5.
    resumed = StepRecorder(str(tmp_path), every=2, start_epoch=1, steps_per_epoch=5)
    resumed.set_model(model)
    _steps_epoch(resumed, 1, [1.0, 1.0, 1.0])
    _steps_epoch(resumed, 2, [2.0])
    with open(tmp_path / "train_steps.json") as fh:
        assert [(r["step"], r["epoch"]) for r in json.load(fh)] == [
            (2, 1), (4, 1), (5, 1), (7, 2), (8, 2), (9, 3)]
    # Resumed after epoch 2 (epoch 3 to be repeated): epoch 3's record is dropped.
    again = StepRecorder(str(tmp_path), every=2, start_epoch=2)
    assert [r["step"] for r in again.records] == [2, 4, 5, 7, 8]
