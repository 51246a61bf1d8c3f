"""Which `tf.distribute` strategy a run trains under."""

from __future__ import annotations

import tensorflow as tf

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
