"""`--precision`: which Keras dtype policy a run trains under, and what `auto` picks.

    float32          every op in float32 (the reference: parity tests, determinism)
    mixed_bfloat16   matmuls and activations in bfloat16, variables in float32
    mixed_float16    as bfloat16 but float16, with dynamic loss scaling (float16's range is
                     too small for small gradients)
    auto             resolved once per run, before the model is built, by `resolve`:

        device                                         auto resolves to
        TPU                                            mixed_bfloat16
        GPU, compute capability >= 8.0 (Ampere on)     mixed_bfloat16
        GPU, compute capability < 8.0                  mixed_float16 (loss scaling)
        CPU with AMX bf16 tiles (`amx_bf16` flag)      mixed_bfloat16
        any other CPU                                  float32

On a CPU with AVX-512 bf16 but without AMX (`avx512_bf16` alone) TensorFlow's bfloat16 matmuls
are slower than float32 (benchmarks/README.md, issue 19), so `auto` keeps float32 there.

Under either mixed policy the variables (hence the optimizer's moments) stay float32, the
logits and the loss are float32 (`model.heads`, `train.optimizer`), and LayerNorm computes its
statistics in float32. The resolved name is what `config.json` records, so a resumed run
trains under the policy it started with.

`cpu_flags` and `resolve` are plain Python (tests give them a cpuinfo text and a device);
`detect_device` and `policy_scope` need TensorFlow and import it when called.
"""

from __future__ import annotations

import contextlib

from tfmask.config import PRECISIONS

#: CPU flags (Linux /proc/cpuinfo) of bfloat16 matrix tiles: what makes bf16 pay on a CPU.
AMX_FLAGS = ("amx_bf16",)


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor of a /proc/cpuinfo text (x86: `flags`,
    ARM: `Features`); empty when there is none."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def read_cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """`cpu_flags` of this machine; empty where the file does not exist (macOS, Windows)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return cpu_flags(fh.read())
    except OSError:
        return frozenset()


def resolve(requested: str, device: str, flags=frozenset(),
            gpu_capability: tuple[int, int] | None = None) -> tuple[str, str]:
    """The policy a run trains under, and why (for the log).

    Args:
      requested: one of `PRECISIONS` (None, from an old configuration, means float32).
      device: "tpu", "gpu" or "cpu": what the strategy computes on.
      flags: the CPU's feature flags (`cpu_flags`), read for `device="cpu"`.
      gpu_capability: (major, minor) CUDA compute capability of the slowest GPU used.

    Returns:
      `(policy, reason)`, e.g. `("mixed_bfloat16", "auto: CPU with AMX bf16 (amx_bf16)")`.
    """
    requested = requested or "float32"
    if requested not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}; got "
                         f"{requested!r}")
    if requested != "auto":
        return requested, "as asked"
    if device == "tpu":
        return "mixed_bfloat16", "auto: TPU"
    if device == "gpu":
        major, minor = gpu_capability or (0, 0)
        if (major, minor) >= (8, 0):
            return "mixed_bfloat16", f"auto: GPU with compute capability {major}.{minor} >= 8.0"
        return "mixed_float16", (f"auto: GPU with compute capability {major}.{minor} < 8.0 "
                                 "(no fast bfloat16), with loss scaling")
    amx = sorted(set(AMX_FLAGS) & set(flags))
    if amx:
        return "mixed_bfloat16", f"auto: CPU with AMX bf16 ({', '.join(amx)})"
    why = ("its avx512_bf16 bfloat16 matmuls are slower than float32 without AMX"
           if "avx512_bf16" in flags else "no bfloat16 matrix unit")
    return "float32", f"auto: CPU without AMX bf16 ({why})"


def detect_device(strategy) -> tuple[str, tuple[int, int] | None]:
    """("tpu" | "gpu" | "cpu", the lowest GPU compute capability or None) of `strategy`."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu", None
    try:
        devices = list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy: TF places ops on the first GPU, if any
        devices = [d.name for d in tf.config.list_logical_devices("GPU")][:1]
    if not any("GPU" in d.upper() for d in devices):
        return "cpu", None
    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability")
                    for gpu in tf.config.list_physical_devices("GPU")]
    capabilities = [tuple(c) for c in capabilities if c]
    return "gpu", min(capabilities) if capabilities else None


def resolve_for(requested: str, strategy) -> tuple[str, str]:
    """`resolve` for the device `strategy` computes on and this machine's CPU flags."""
    device, capability = detect_device(strategy)
    return resolve(requested, device, read_cpu_flags() if device == "cpu" else frozenset(),
                   capability)


def choose(train_config, strategy) -> str:
    """Resolves `train_config.precision` for `strategy`, writes the result back (so that
    `config.json` records what the run trains under), prints it, and returns it."""
    policy, why = resolve_for(train_config.precision, strategy)
    train_config.precision = policy
    print(f"Precision: {policy} ({why}).", flush=True)
    return policy


@contextlib.contextmanager
def policy_scope(policy: str):
    """Keras's global dtype policy set to `policy` inside the block and restored after it, so
    that one run's precision does not leak into the next run of the same process."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def with_loss_scaling(optimizer, policy: str):
    """`optimizer` wrapped in dynamic loss scaling under mixed_float16, else unchanged."""
    if policy != "mixed_float16":
        return optimizer
    import keras

    return keras.optimizers.LossScaleOptimizer(optimizer)
