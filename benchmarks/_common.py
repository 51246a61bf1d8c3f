"""Helpers shared by the benchmark scripts (not part of the tfmask package).

Both scripts compare tfmask's `MaskedLM(BertEncoder)` with keras-hub's `BertMaskedLM` at the
same shape, fed the same batches of tfmask's pipeline, with the same optimizer, loss, metric,
`jit_compile` and `steps_per_execution`, in fp32.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmask import presets  # noqa: E402

DEFAULT_CORPUS = "../shared/data/corpus/*.txt"


def log(*args) -> None:
    """Everything but the final JSON line goes to stderr."""
    print(*args, file=sys.stderr, flush=True)


def corpus_files(pattern: str | None) -> tuple[list[str], str]:
    """Files of `pattern`; the embedded corpus written to a temp dir when nothing matches."""
    if pattern:
        files = sorted(f for f in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(f))
        if files:
            return files, pattern
        log(f"--corpus {pattern!r} matches no file: using the embedded corpus")
    from tfmask import demo

    directory = tempfile.mkdtemp(prefix="tfmask_bench_corpus_")
    files = demo.write_corpus(directory, seed=0)
    return files, os.path.join(directory, "*.txt")


def build_models(preset: str, vocabulary_size: int, seed: int = 0, dropout: float = 0.1):
    """(tfmask MaskedLM, keras-hub BertMaskedLM) of the same shape, fp32, same dropout."""
    import keras_hub

    from tfmask.model.encoder import BertEncoder
    from tfmask.model.heads import MaskedLM

    keras.mixed_precision.set_global_policy("float32")
    cfg = presets.encoder_config(preset, vocabulary_size, max_sequence_length=512,
                                 dropout=dropout)
    keras.utils.set_random_seed(seed)
    tfmask_model = MaskedLM(BertEncoder.from_encoder_config(cfg))
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=cfg.vocabulary_size, num_layers=cfg.num_layers,
        num_heads=cfg.num_heads, hidden_dim=cfg.hidden_dim,
        intermediate_dim=cfg.intermediate_dim, dropout=dropout,
        max_sequence_length=cfg.max_sequence_length, num_segments=cfg.num_segments)
    kh_model = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
    return tfmask_model, kh_model, cfg


def count_params(model) -> int:
    return int(sum(int(tf.size(w)) for w in model.trainable_weights))


def flops_per_token(cfg, seq_len: int, max_predictions: int) -> tuple[float, str]:
    """Training FLOPs per input token (forward + backward = 3 x forward, 2 FLOPs per MAC).

      6 * N                      N = layers * (4 H^2 + 2 H I): every matmul weight of the blocks
    + 12 * layers * L * H        attention scores Q K^T and probs x V, fwd + bwd
    + 6 * (H^2 + H V) * P / L    MLM head at the P prediction slots: dense H x H and the tied
                                 H x V output projection (all P slots are computed)
    Embedding look-ups, LayerNorm, softmax, GELU, biases, the pooler and the optimizer update
    are not counted.
    """
    h, i, n, v = cfg.hidden_dim, cfg.intermediate_dim, cfg.num_layers, cfg.vocabulary_size
    l, p = seq_len, max_predictions
    n_params = n * (4 * h * h + 2 * h * i)
    body = 6 * n_params
    attention = 12 * n * l * h
    head = 6 * (h * h + h * v) * p / l
    total = body + attention + head
    formula = (f"6*N + 12*layers*L*H + 6*(H^2 + H*V)*P/L with N=layers*(4H^2+2HI)={n_params}, "
               f"layers={n}, H={h}, I={i}, V={v}, L={l}, P={p}: {body:.0f} + {attention:.0f} + "
               f"{head:.0f} = {total:.0f} FLOPs/token")
    return total, formula


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Median fp32 GFLOP/s of an n x n x n `tf.matmul` (the measured peak of this process)."""
    a = tf.random.normal([n, n], dtype=tf.float32)
    b = tf.random.normal([n, n], dtype=tf.float32)

    @tf.function
    def mm(a, b):
        return tf.reduce_sum(tf.matmul(a, b))  # tiny output: no host copy of n x n

    mm(a, b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mm(a, b).numpy()
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def materialise(ds: tf.data.Dataset, num_batches: int) -> tf.data.Dataset:
    """The first `num_batches` batches held in memory as tensors, repeated forever."""
    batches = list(ds.take(num_batches))
    if len(batches) < num_batches:
        raise ValueError(f"the pipeline gave only {len(batches)} batches")
    stacked = tf.nest.map_structure(lambda *t: tf.stack(t), *batches)
    return tf.data.Dataset.from_tensor_slices(stacked).repeat().prefetch(2)


def default_hf_python() -> str:
    """The Python with torch + transformers that runs a benchmark's Hugging Face side:
    `TFMASK_HF_PYTHON` (as the optional parity tests read it), else /tmp/hfenv/bin/python
    (the virtualenv benchmarks/README.md sets up)."""
    return os.environ.get("TFMASK_HF_PYTHON", "/tmp/hfenv/bin/python")


class JsonLineProcess:
    """A child process that answers each command line written to its stdin with one JSON line
    on its stdout (its stderr passes through). `ready` is the first line it writes, once it
    has loaded what it needs; `ask` sends a command and returns the reply. `pause` freezes it
    (SIGSTOP: every thread, a tf.data pipeline's background ones too) until `resume`, so that a
    side waiting for its turn takes no CPU from the side being timed.
    """

    def __init__(self, command: list[str], env: dict | None = None):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)
        self.ready = self._reply()

    def _reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{os.path.basename(self.process.args[1])} ended early (see its "
                             "stderr above)")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._reply()

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        """Resumes it, asks it to quit and waits for it (kills it after a minute)."""
        if self.process.poll() is not None:
            return
        self.resume()
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
