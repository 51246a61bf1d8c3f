"""AdamW as BERT trains it: warm-up + linear decay, no decay on LayerNorm and biases, the
global-norm clip of the dense gradient, PyTorch's epsilon placement, optional layer-wise
learning-rate decay; the loss over weighted positions of the global batch; and the compile step
that pairs them."""

from __future__ import annotations

import re

import keras
from keras import ops
import tensorflow as tf

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


def _across_replicas() -> bool:
    """Whether this runs in one of several replicas (inside a strategy's train step)."""
    context = tf.distribute.get_replica_context()
    return context is not None and context.num_replicas_in_sync > 1


@keras.saving.register_keras_serializable(package="tfmask")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate shrinks by `layer_decay` per layer below the top.

    A variable at depth d (`layer_depth`) is updated with `learning_rate * layer_decay **
    (num_layers + 1 - d)`: the task head at the full rate, the embeddings at the smallest
    (layer-wise learning-rate decay, Clark et al. 2020; Sun et al. 2019). `layer_decay=1` is
    plain AdamW. Sparse (embedding) gradients are made dense before clipping and Adam: see
    `densify_sparse_gradient`. Under a strategy with several replicas the replicas' gradients
    are summed before the global-norm clip, so the step is the one a single device takes on
    the whole batch.

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
        grads = [densify_sparse_gradient(g) for g in grads]
        if _across_replicas():
            # Keras clips each replica's share of the gradient and sums the clipped shares
            # afterwards, a different (smaller) step than one device's on the whole batch
            # whenever the clip is active: sum first, then clip the sum.
            grads = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, grads)
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if _across_replicas():  # summed in `_clip_gradients` already
            return list(grads_and_vars)
        return super()._all_reduce_sum_gradients(grads_and_vars)

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


@keras.saving.register_keras_serializable(package="tfmask")
class WeightedMeanCrossEntropy(keras.losses.Loss):
    """Sparse cross-entropy on logits, the mean over the weighted positions of the global
    batch: `sum(w * ce) / sum(w)`, both sums over every replica of every worker.

    Keras's own reductions divide on each replica, by its slots (padding and unused MLM slots
    included) or by its own weight sum, so the loss of a batch would depend on how its
    predicted positions fall across replicas and workers. Here each replica returns its share,
    `sum_replica(w * ce) / sum_all(w)` with the weight sum all-reduced, and the shares (and
    their gradients, which the strategy sums) add up to the global mean: the step one device
    takes on the whole batch. Keras's logged loss undoes the per-replica division, so it is
    that mean too. Weights are any non-negative numbers (tfmask datasets give 1 where a label
    is predicted, 0 elsewhere); without them every position weighs 1.

    Args (of a call):
      y_true: int label ids [B, ...].
      y_pred: logits [B, ..., C].
      sample_weight: [B, ...] weights, or None.
    """

    def __init__(self, name: str = "weighted_mean_cross_entropy"):
        super().__init__(name=name)

    def __call__(self, y_true, y_pred, sample_weight=None):
        losses = ops.sparse_categorical_crossentropy(y_true, ops.cast(y_pred, "float32"),
                                                     from_logits=True)  # [B, ...]
        weights = (ops.ones_like(losses) if sample_weight is None
                   else ops.reshape(ops.cast(sample_weight, "float32"), ops.shape(losses)))
        total, count = ops.sum(losses * weights), ops.sum(weights)
        if _across_replicas():  # not while Keras infers shapes (cross-replica context)
            count = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, count)
        return ops.divide_no_nan(total, count)

    def get_config(self):
        return {"name": self.name}


def compile_model(model: keras.Model, optimizer, accuracy_name: str = "accuracy",
                  jit_compile: bool = False, steps_per_execution: int = 1) -> None:
    """Cross-entropy on logits and an accuracy, both over the weighted positions only.

    Every tfmask dataset yields `(x, y, sample_weight)` whose weights are 1 where a label is
    predicted and 0 elsewhere (unused MLM slots, padding, non-first word pieces); the loss
    (`WeightedMeanCrossEntropy`) is the mean over the predicted positions of the global batch,
    identical for any number of replicas and workers, and so is the accuracy (Keras sums its
    counts over replicas). `accuracy_name` is "masked_accuracy" for MLM and "accuracy" for the
    classifiers (NER: over first pieces, a quick progress-bar number; the metric that counts
    is the entity F1 of the validation callback).
    """
    model.compile(
        optimizer=optimizer,
        loss=WeightedMeanCrossEntropy(),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name=accuracy_name)],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
