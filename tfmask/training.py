"""Strategy choice, optimizer and schedule, callbacks, and the `model.fit` pretraining loop."""

from __future__ import annotations

import json
import os
import re
import time
import warnings

import keras
from keras import ops
import tensorflow as tf

_BACKUP_METADATA = "training_metadata.json"


# ----------------------------------------------------------------------------------------------
# Strategy
# ----------------------------------------------------------------------------------------------
def choose_strategy(name: str = "auto", devices: list[str] | None = None):
    """Returns a `tf.distribute.Strategy`.

    Args:
      name: "auto" (MirroredStrategy over the visible GPUs; the default strategy on CPU),
        "default", "mirrored", "multi_worker" (reads `TF_CONFIG`), or "tpu" (a TPU reached
        through `TPUClusterResolver`, e.g. in Colab).
      devices: for "mirrored", explicit devices (e.g. two logical CPUs in tests).
    """
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"--strategy must be auto, default, mirrored, multi_worker or tpu; "
                     f"got {name!r}")


# ----------------------------------------------------------------------------------------------
# Optimizer
# ----------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="tfmask")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak_learning_rate`, then linear decay to 0 at `total_steps`.

    Args:
      peak_learning_rate: the rate reached at the end of warm-up.
      warmup_steps: steps of linear warm-up.
      total_steps: the step at which the rate reaches 0.
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = keras.ops.cast(max(self.warmup_steps, 1), "float32")
        decay = keras.ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
        up = step / warmup
        down = keras.ops.maximum(0.0, (self.total_steps - step) / decay)
        return self.peak_learning_rate * keras.ops.where(step < self.warmup_steps, up, down)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate,
                "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


_EMBEDDING_LAYERS = ("token_embedding/", "position_embedding/", "segment_embedding/",
                     "embeddings_layer_norm/")


def layer_depth(path: str, num_layers: int) -> int:
    """Depth of a variable in a BERT model: embeddings 0, `transformer_layer_i` i + 1, the
    pooler and task heads `num_layers + 1`."""
    match = re.search(r"(?:^|/)transformer_layer_(\d+)/", path)
    if match:
        return int(match.group(1)) + 1
    if any(path.startswith(p) or f"/{p}" in path for p in _EMBEDDING_LAYERS):
        return 0
    return num_layers + 1


def densify_sparse_gradient(gradient):
    """A sparse (embedding) gradient as the dense tensor it stands for: rows that share an
    index (an embedding row used by several tokens of the batch) are summed.

    Keras's Adam squares a sparse gradient slice by slice, so a row used n times gets
    v = sum of squares instead of the square of the summed gradient, and its update is up to
    sqrt(n) times too large (the segment embedding's row 0, used by every token, moved 3.5x
    the learning rate on a 21-token batch). Adam's moment updates are dense anyway, so the
    dense gradient costs about nothing extra, and it compiles under XLA (`tf.unique` would
    not).
    """
    if isinstance(gradient, tf.IndexedSlices):
        return tf.convert_to_tensor(gradient)
    return gradient


@keras.saving.register_keras_serializable(package="tfmask")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate shrinks by `layer_decay` per layer below the top.

    A variable at depth d (`layer_depth`) is updated with `learning_rate * layer_decay **
    (num_layers + 1 - d)`: the task head at the full rate, the embeddings at the smallest
    (layer-wise learning-rate decay, Clark et al. 2020; Sun et al. 2019). `layer_decay=1` is
    plain AdamW. Sparse (embedding) gradients are made dense before clipping and Adam: see
    `densify_sparse_gradient`.

    Args:
      layer_decay: factor per layer, in (0, 1].
      num_layers: Transformer blocks in the encoder.
      **kwargs: `keras.optimizers.AdamW` arguments.
    """

    def __init__(self, layer_decay: float = 1.0, num_layers: int = 0, **kwargs):
        super().__init__(**kwargs)
        if self.amsgrad:
            raise ValueError("LayerwiseAdamW does not implement amsgrad")
        if not 0 < layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
        self.layer_decay = float(layer_decay)
        self.num_layers = int(num_layers)

    def learning_rate_multiplier(self, variable) -> float:
        """The factor on the learning rate of a (Keras) variable."""
        depth = layer_depth(variable.path, self.num_layers)
        return self.layer_decay ** (self.num_layers + 1 - depth)

    def build(self, var_list):
        super().build(var_list)
        # update_step receives backend variables (no `.path`): look factors up by index.
        self._multipliers = [self.learning_rate_multiplier(v) for v in var_list]

    def _clip_gradients(self, grads):
        # Dense first: the global norm of an IndexedSlices gradient is taken over its slices,
        # so a row used n times counts as n separate rows and the norm comes out too small
        # (all-MiniLM-L6-v2 on CoNLL batches: 2.42 instead of 2.53), clipping less than BERT
        # and PyTorch do.
        return super()._clip_gradients([densify_sparse_gradient(g) for g in grads])

    def update_step(self, gradient, variable, learning_rate):
        """Adam's step with epsilon added to the bias-corrected sqrt(v), as PyTorch's AdamW
        and Hugging Face compute it.

        Keras adds epsilon before v's bias correction, which makes it 1 / sqrt(1 - beta_2^t)
        times larger: 32x at the first step, 1.7x after 439 steps. With BERT's epsilon (1e-6)
        and the small gradients of embedding rows and LayerNorm weights that damps early
        updates several-fold (MiniLM on CoNLL batches: weights 1.9e-4 away from PyTorch's after
        five steps, half of how far they moved). Gradients arrive dense (`_clip_gradients`).
        """
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        index = self._get_variable_index(variable)
        if self.layer_decay != 1.0:
            lr = ops.multiply(lr, self._multipliers[index])
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, dtype), step)
        correction_2 = ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), step))
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        # lr / c1 * m / (sqrt(v) / c2 + eps)  ==  (lr * c2 / c1) * m / (sqrt(v) + eps * c2)
        self.assign_sub(variable, ops.divide(
            ops.multiply(m, lr * correction_2 / correction_1),
            ops.add(ops.sqrt(v), self.epsilon * correction_2)))

    def get_config(self):
        config = super().get_config()
        config.update(layer_decay=self.layer_decay, num_layers=self.num_layers)
        return config


def build_optimizer(learning_rate: float, total_steps: int, warmup_steps: int = -1,
                    weight_decay: float = 0.01, clipnorm: float | None = 1.0,
                    epsilon: float = 1e-6, layer_decay: float = 1.0,
                    num_layers: int = 0) -> keras.optimizers.AdamW:
    """AdamW with warm-up + linear decay, no decay on LayerNorm and biases, global-norm clip,
    and optional layer-wise learning-rate decay (`LayerwiseAdamW`).

    `warmup_steps=-1` means 10% of `total_steps`.
    """
    if warmup_steps < 0:
        warmup_steps = max(1, total_steps // 10)
    optimizer = LayerwiseAdamW(
        layer_decay=layer_decay, num_layers=num_layers,
        learning_rate=WarmupLinearDecay(learning_rate, warmup_steps, total_steps),
        weight_decay=weight_decay, epsilon=epsilon, global_clipnorm=clipnorm)
    # Keras variable names are short ("gamma", "beta", "bias"): these cover every LayerNorm
    # and bias, as BERT's AdamWeightDecayOptimizer does.
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def compile_masked_lm(model: keras.Model, optimizer, jit_compile=False,
                      steps_per_execution: int = 1) -> None:
    """Loss and masked-token accuracy over the masked positions only.

    The dataset's `sample_weight` is zero on unused prediction slots and normalised over the
    global batch (see `tfmask.data.pretraining_dataset`), so Keras's default reduction yields
    the mean cross-entropy over masked tokens, identical for any number of replicas.
    """
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )


# ----------------------------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------------------------
def resumed_epoch(backup_dir: str) -> int:
    """The epoch (= checkpoint interval) `BackupAndRestore` will resume from; 0 if none."""
    path = os.path.join(backup_dir, _BACKUP_METADATA)
    if not os.path.exists(path):
        return 0
    with open(path) as fh:
        return int(json.load(fh)["epoch"])


class HistoryRecorder(keras.callbacks.Callback):
    """Writes `history.json` (one record per checkpoint interval) and `history.png`.

    Records: `step`, `loss`, `masked_accuracy`, `tokens_per_second` (B x L positions per
    second of training steps, evaluation excluded), `learning_rate`, `wall_time`, and with
    evaluation data `eval_loss`, `eval_masked_accuracy`. On resume, records of steps beyond the
    restored checkpoint are dropped and the rest kept.
    """

    def __init__(self, run_dir: str, steps_per_epoch: int, tokens_per_step: int,
                 start_step: int = 0):
        super().__init__()
        self.path = os.path.join(run_dir, "history.json")
        self.plot_path = os.path.join(run_dir, "history.png")
        self.steps_per_epoch = steps_per_epoch
        self.tokens_per_step = tokens_per_step
        self.records = []
        if os.path.exists(self.path):
            with open(self.path) as fh:
                self.records = [r for r in json.load(fh) if r["step"] <= start_step]
        self._start = self._last_batch_end = None
        self._run_start = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        elapsed = max((self._last_batch_end or time.perf_counter()) - self._start, 1e-9)
        record = {
            "step": (epoch + 1) * self.steps_per_epoch,
            "loss": float(logs["loss"]),
            "masked_accuracy": float(logs["masked_accuracy"]),
            "tokens_per_second": self.steps_per_epoch * self.tokens_per_step / elapsed,
            "learning_rate": float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate)),
            "wall_time": time.time() - self._run_start,
        }
        if "val_loss" in logs:
            record["eval_loss"] = float(logs["val_loss"])
            record["eval_masked_accuracy"] = float(logs["val_masked_accuracy"])
        self.records.append(record)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(self.records, fh, indent=1)
        os.replace(tmp, self.path)  # never a half-written history after a kill
        from tfmask.plots import plot_history

        plot_history(self.records, self.plot_path)


class ReseedDropout(keras.callbacks.Callback):
    """Sets every dropout RNG state from the epoch number at the start of each epoch.

    Keras's weight checkpoints do not hold the `SeedGenerator` states that drive dropout, so a
    run restored by `BackupAndRestore` would draw different dropout masks than the run that
    was interrupted. Deriving the states from (initial seed, epoch) makes a resumed run draw
    exactly the masks an uninterrupted one draws.
    """

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self.model._flatten_layers(include_self=True):
            for generator in getattr(layer, "_seed_generators", ()):
                state = keras.ops.convert_to_numpy(generator.state.value)
                # state[0] is the generator's seed (fixed by the run seed); state[1] counts
                # draws. Each epoch gets its own block of 2**20 draws.
                state[1] = epoch << 20
                generator.state.assign(state)


def quiet_unused_pooler_warning():
    """MLM pretraining (no next-sentence task) leaves the pooler without gradients: expected."""
    warnings.filterwarnings("ignore", message="Gradients do not exist for variables.*pooler")
