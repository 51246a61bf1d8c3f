"""Which `tf.distribute` strategy a run trains under, and how a run spans several workers.

Several workers (hosts) train one model with `MultiWorkerMirroredStrategy`: every worker runs
the same command, with a `TF_CONFIG` that names the cluster and its own task (TensorFlow reads
it). A run then works like this:

    strategy        created before any other TensorFlow op of the process (`choose_strategy`)
    preparation     on the chief only (the task "chief", else worker 0): vocabulary, the
                    run directory's config claim, the step to resume from, fine-tuning's
                    validation scores; the other workers wait in a collective and receive
                    the result (`chief_first`, `OnChief`), so nothing is computed twice,
                    nothing races on a file, no shared filesystem is needed, and an error on
                    the chief stops every worker with its message
    outputs         the chief writes the run directory and, last, the final models; every
                    other worker writes its logs, history and checkpoints into a temporary
                    folder, removed when the run ends (`worker_directory`)
    data            each worker reads its own share of every global batch (`pretraining_data`
                    with an `InputContext`); the loss is the mean over the weighted positions
                    of the global batch, all replicas of all workers together
                    (`optimizer.WeightedMeanCrossEntropy`)
    resume          `BackupAndRestore` restores the chief's last checkpoint, then every worker
                    takes the chief's weights, optimizer state and epoch (`SyncFromChief`)

Keras 3 does not run `fit` across workers as it is; `enable_multi_worker_fit` fixes that for
one model.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

#: The one `MultiWorkerMirroredStrategy` of this process: TensorFlow configures collectives
#: once per process, so a second `pretrain` / `finetune` call reuses the first one's.
_MULTI_WORKER_STRATEGY = None


def choose_strategy(name: str = "auto", devices: list[str] | None = None):
    """Returns a `tf.distribute.Strategy`.

    Args:
      name: "auto" (MirroredStrategy over the visible GPUs; the default strategy on CPU),
        "default", "mirrored", "multi_worker" (`MultiWorkerMirroredStrategy` over the cluster
        `TF_CONFIG` describes, the visible GPUs of each worker or its CPU; without `TF_CONFIG`
        one worker), or "tpu" (`TPUStrategy` on the TPU attached to this VM: a TPU VM or a
        Colab TPU runtime).
      devices: for "mirrored", explicit devices (e.g. two logical CPUs in tests).

    "multi_worker" must come before any other TensorFlow op of the process (TensorFlow sets
    up collectives when its runtime starts): `pretrain` and `finetune` choose their strategy
    first, and the same strategy serves every later call in the process.
    """
    global _MULTI_WORKER_STRATEGY
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if _MULTI_WORKER_STRATEGY is None:
            try:
                _MULTI_WORKER_STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as e:
                raise RuntimeError(
                    "--strategy multi_worker: the strategy must be created before the process "
                    f"runs any other TensorFlow op (start a fresh process): {e}") from None
        return _MULTI_WORKER_STRATEGY
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"--strategy must be auto, default, mirrored, multi_worker or tpu; "
                     f"got {name!r}")


def needs_static_shapes(strategy) -> bool:
    """Whether every batch must have one shape: a TPU compiles one program per input shape,
    so its batches are padded to `max_sequence_length` and never smaller than the batch size,
    and the train step is XLA-compiled."""
    return isinstance(strategy, tf.distribute.TPUStrategy)


# ----------------------------------------------------------------------------------------------
# Who is who
# ----------------------------------------------------------------------------------------------
def _cluster(strategy) -> dict:
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return {}
    return resolver.cluster_spec().as_dict()


def num_workers(strategy) -> int:
    """The workers (processes, usually one a host) `strategy` spans: more than 1 only for a
    `MultiWorkerMirroredStrategy` whose cluster has several tasks."""
    cluster = _cluster(strategy)
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def is_chief(strategy) -> bool:
    """Whether this process is the chief: the task of type "chief" if the cluster has one,
    else worker 0. A single worker is its own chief. The task comes from the strategy's
    cluster resolver (which TensorFlow filled from `TF_CONFIG`)."""
    if num_workers(strategy) == 1:
        return True
    resolver = strategy.cluster_resolver
    if "chief" in _cluster(strategy):
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def worker_name(strategy) -> str:
    """"worker 1", "chief", ...: how messages name this process (empty for one worker)."""
    if num_workers(strategy) == 1:
        return ""
    resolver = strategy.cluster_resolver
    return resolver.task_type if resolver.task_type == "chief" else \
        f"{resolver.task_type} {resolver.task_id}"


@contextlib.contextmanager
def worker_directory(strategy, run_dir: str):
    """Where this worker writes a run's files: `run_dir` on the chief; on any other worker a
    temporary folder (`tfmask-worker1-*` in the system's temporary directory) that is removed
    when the block ends, even on an error. Only a killed worker leaves its folder behind.
    Across workers each says which it is and where it writes."""
    workers = num_workers(strategy)
    if is_chief(strategy):
        if workers > 1:
            print(f"{worker_name(strategy)} of {workers} workers (the chief): writing to "
                  f"{run_dir}", flush=True)
        yield run_dir
        return
    name = worker_name(strategy)
    folder = tempfile.mkdtemp(prefix=f"tfmask-{name.replace(' ', '')}-")
    print(f"{name} of {workers} workers: writing to a temporary folder, {folder} (removed at "
          "the end; the chief writes the run directory)", flush=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# The chief's values on every worker
# ----------------------------------------------------------------------------------------------
def _from_first_replica(strategy, values: list) -> list[tf.Tensor]:
    """Every worker's copy of the first replica's `values` (replica 0 is on the chief): an
    all-reduce (SUM) to which only that replica contributes, exact for any dtype."""

    def replica_fn(*tensors):
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        tensors = [tf.where(first, t, tf.zeros_like(t)) for t in tensors]
        reduced = [None] * len(tensors)
        # One all-reduce per dtype (a batch of them must share one), in the same order on
        # every worker.
        for dtype in sorted({t.dtype for t in tensors}, key=lambda d: d.name):
            where = [i for i, t in enumerate(tensors) if t.dtype == dtype]
            values = context.all_reduce(tf.distribute.ReduceOp.SUM, [tensors[i] for i in where])
            for i, value in zip(where, values):
                reduced[i] = value
        return reduced

    results = strategy.run(replica_fn, args=tuple(values))
    return [strategy.experimental_local_results(r)[0] for r in results]


#: Graphs of `_from_first_replica` (collectives run eagerly are slow), one for each strategy
#: and list of dtypes and ranks: each is traced once, whatever the lengths.
_BROADCASTS: dict = {}


def _broadcast_tensors(strategy, values: list) -> list[tf.Tensor]:
    values = [tf.convert_to_tensor(v) for v in values]
    signature = tuple(tf.TensorSpec([None] * v.shape.rank, v.dtype) for v in values)
    key = (id(strategy), signature)
    if key not in _BROADCASTS:
        _BROADCASTS[key] = tf.function(
            lambda *tensors: _from_first_replica(strategy, list(tensors)),
            input_signature=signature)
    return _BROADCASTS[key](*values)


def broadcast_bytes(strategy, data: bytes) -> bytes:
    """The chief's `data` on every worker (what the others pass is ignored)."""
    length = _broadcast_tensors(strategy, [tf.constant([len(data)], tf.int32)])[0]
    length = int(length.numpy()[0])
    payload = (np.frombuffer(data, np.uint8).astype(np.int32) if is_chief(strategy)
               else np.zeros(length, np.int32))
    received = _broadcast_tensors(strategy, [tf.constant(payload, tf.int32)])[0].numpy()
    return received.astype(np.uint8).tobytes()


class ChiefError(ValueError):
    """The chief failed while preparing the run (a different configuration in the run
    directory, a bad vocabulary file, ...): every other worker stops with its message."""


def chief_first(strategy, prepare: Callable[[], dict]) -> dict:
    """Runs `prepare()` on the chief and returns its result (a JSON-serialisable dict) on
    every worker.

    With one worker this is `prepare()`. With several, the others wait in a collective until
    the chief is done (learning a vocabulary can take minutes), then read its result:
    nothing is computed twice and nothing races on a file. If `prepare` raises on the chief,
    the chief re-raises it and every other worker raises `ChiefError` with its message.
    """
    if num_workers(strategy) == 1:
        return prepare()
    if is_chief(strategy):
        try:
            result = prepare()
        except Exception as e:
            message = str(e).strip() or type(e).__name__
            broadcast_bytes(strategy, json.dumps({"error": message}).encode())
            raise
        broadcast_bytes(strategy, json.dumps({"result": result}).encode())
        return result
    received = json.loads(broadcast_bytes(strategy, b"").decode())
    if "error" in received:
        raise ChiefError(f"{worker_name(strategy)}: the chief stopped: {received['error']}")
    return received["result"]


class OnChief:
    """`function(*args)` computed on the chief only, its result (JSON-serialisable) given to
    every worker; other attributes are the function's.

    For fine-tuning's validation scores: every worker then sees the same numbers (early
    stopping decides alike everywhere, even if another host's arithmetic rounds differently),
    and the other workers spend no time on them."""

    def __init__(self, strategy, function):
        self.strategy, self.function = strategy, function

    def __getattr__(self, name):
        return getattr(self.function, name)

    def __call__(self, *args):
        return chief_first(self.strategy, lambda: self.function(*args))


class SyncFromChief(keras.callbacks.Callback):
    """Gives every worker the chief's weights, optimizer state and starting epoch once
    `BackupAndRestore` (the callback before this one) has restored the chief's last checkpoint.

    Only the chief's checkpoint counts: the other workers checkpoint into temporary folders,
    and a restarted worker has none. Nothing happens on a fresh start (the strategy gives all
    workers the chief's initial values) or with one worker.
    """

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy

    def on_train_begin(self, logs=None):
        if num_workers(self.strategy) == 1:
            return
        epoch = tf.constant([self.model._initial_epoch or 0], tf.int64)
        epoch = int(_broadcast_tensors(self.strategy, [epoch])[0].numpy()[0])
        if not epoch:
            return
        variables = list(self.model.weights) + list(self.model.optimizer.variables)
        values = _broadcast_tensors(self.strategy,
                                    [tf.convert_to_tensor(v.value) for v in variables])
        for variable, value in zip(variables, values):
            variable.assign(value)
        self.model._initial_epoch = epoch


# ----------------------------------------------------------------------------------------------
# Keras fit across workers
# ----------------------------------------------------------------------------------------------
def _first_local_value(value):
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


def _replica_spec(spec):
    """The spec of one replica's value (a `PerReplicaSpec` holds one per local replica)."""
    return getattr(spec, "_value_specs", (spec,))[0]


def enable_multi_worker_fit(model: keras.Model, strategy) -> keras.Model:
    """Lets `model.fit` and `model.evaluate` run when `strategy` spans several workers.

    Keras 3 (checked with 3.15) fails there in two places, both fixed on this model only:

    - before the first step it averages the first input batch over all replicas with a
      collective (only to learn the input shapes), which raises for a dict of per-replica
      tensors: the model is built from the input spec instead, without taking a batch (a
      fresh iterator would also move the seeds of the dataset's shuffles, so training would
      read other batches than one process does);
    - after every step it averages each replica's metric values over the workers along axis
      0, which raises for scalars: the step returns them with shape [1], which that average
      reduces to the mean over the replicas.

    Epoch-end logs are read from the metric variables, summed over every replica of every
    worker, as on one worker. A no-op for a single worker.
    """
    if num_workers(strategy) == 1 or not hasattr(model, "_symbolic_build"):
        return model

    def build(iterator=None, data_batch=None):
        if data_batch is None and iterator is not None:
            dataset = getattr(iterator, "_distributed_dataset", None)
            if dataset is not None:
                data_batch = keras.tree.map_structure(_replica_spec, dataset.element_spec)
            else:  # a Keras that keeps it elsewhere: this worker's first replica's batch
                for _, _, batches in iterator:
                    data_batch = keras.tree.map_structure(_first_local_value, next(batches))
                    break
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def with_vector_logs(step):
        def wrapped(data):
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}
        return wrapped

    model._maybe_symbolic_build = build
    model.train_step = with_vector_logs(model.train_step)
    model.test_step = with_vector_logs(model.test_step)
    return model


def distribute_training_data(strategy, dataset_fn: Callable):
    """The training data for `fit`: `dataset_fn(None)` (the global batches, which the strategy
    splits), or across workers `dataset_fn(input_context)` on each worker, its share of every
    global batch in per-replica batches."""
    if num_workers(strategy) == 1:
        return dataset_fn(None)
    return strategy.distribute_datasets_from_function(dataset_fn)
