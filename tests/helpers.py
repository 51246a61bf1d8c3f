"""One-call test helpers shared by the test modules."""

from __future__ import annotations

import functools
import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfmask.text.tokenization import SPECIAL_TOKENS, WordPieceTokenizer

#: A hand-written vocabulary: exact ids in tests come from here, not from a learner.
TINY_VOCAB = list(SPECIAL_TOKENS) + [
    "the", "cat", "sat", "on", "mat", ".", ",", "un", "##aff", "##able", "dog", "##s",
    "a", "big", "café", "cafe", "!", "hello", "world",
]


def tiny_tokenizer(lower_case: bool = True) -> WordPieceTokenizer:
    return WordPieceTokenizer(TINY_VOCAB, lower_case=lower_case)


def random_inputs(batch: int = 2, length: int = 8, vocabulary_size: int = 30,
                  num_predictions: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Encoder/MaskedLM inputs with some padding at the end of the second row."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, vocabulary_size, size=(batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), bool)
    if batch > 1:
        padding_mask[1, length // 2:] = False
        token_ids[1, length // 2:] = 0
    positions = np.stack([np.sort(rng.choice(np.arange(1, length // 2), num_predictions,
                                             replace=False)) for _ in range(batch)])
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask, "mask_positions": positions.astype("int32")}


def run_serialization_test(obj) -> None:
    """`from_config(get_config())` rebuilds an object with an identical config."""
    config = obj.get_config()
    rebuilt = obj.__class__.from_config(config)
    assert rebuilt.get_config() == config


def run_saving_test(model: keras.Model, inputs, tmp_path, atol: float = 1e-6) -> keras.Model:
    """Saves to `.keras`, reloads, and checks outputs are allclose. Returns the reloaded model."""
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    before = keras.tree.map_structure(keras.ops.convert_to_numpy, model(inputs))
    after = keras.tree.map_structure(keras.ops.convert_to_numpy, reloaded(inputs))
    keras.tree.map_structure(lambda a, b: np.testing.assert_allclose(a, b, atol=atol),
                             before, after)
    return reloaded


# ----------------------------------------------------------------------------------------------
# Layers: construction, serialization, one training step
# ----------------------------------------------------------------------------------------------
#: Keys every `keras.layers.Layer.get_config()` carries besides the constructor arguments.
LAYER_BASE_KEYS = frozenset({"name", "trainable", "dtype"})


def constructor_params(cls) -> dict:
    """Constructor parameters of `cls` (name -> `inspect.Parameter`), minus self/**kwargs."""
    import inspect

    return {name: p for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def run_config_test(cls, init_kwargs: dict, base_keys=LAYER_BASE_KEYS):
    """Every argument non-default, config keys == constructor parameters, exact round trip.

    `init_kwargs` must name every constructor parameter, each with a value that differs from
    its default, so an argument that `get_config` drops (or `__init__` ignores) fails here.
    Plain values (numbers, strings) must come back unchanged in the config (strings that
    Keras serializes to a dict, such as initializer names, are compared by round trip). Returns the
    rebuilt object.
    """
    params = constructor_params(cls)
    assert set(init_kwargs) == set(params), (
        f"test must set every argument of {cls.__name__}: missing "
        f"{sorted(set(params) - set(init_kwargs))}, "
        f"unknown {sorted(set(init_kwargs) - set(params))}")
    for name, value in init_kwargs.items():
        default = params[name].default
        if default is not params[name].empty and isinstance(value, (int, float, str, type(None))):
            assert value != default, f"{cls.__name__}({name}=...) is the default {default!r}"
    obj = cls(**init_kwargs)
    config = obj.get_config()
    assert set(config) == set(params) | set(base_keys), (
        f"{cls.__name__}.get_config() keys {sorted(config)} != constructor parameters "
        f"{sorted(params)} + {sorted(base_keys)}")
    for name, value in init_kwargs.items():
        if isinstance(value, (bool, int, float, str)) and not isinstance(config[name], dict):
            assert config[name] == value, (name, config[name], value)
    rebuilt = cls.from_config(config)
    assert rebuilt.get_config() == config
    # Through the registry too, as `.keras` files do.
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(revived) is cls and revived.get_config() == config
    return rebuilt


def _shapes_match(actual, expected) -> bool:
    """Shapes agree where `actual` is known (a symbolic batch dim is None)."""
    return len(actual) == len(expected) and all(
        a is None or e is None or a == e for a, e in zip(actual, expected))


def run_layer_test(layer_cls, init_kwargs: dict, input_data, expected_output_shape,
                   expected_num_trainable_weights: int, call_kwargs: dict | None = None,
                   run_training_step: bool = True, expected_unchanged: tuple = ()):
    """One call that exercises a layer the way Keras will use it.

    - `build` creates every weight (calling it afterwards creates none);
    - the eager output has `expected_output_shape`, and the symbolic call and
      `compute_output_shape` agree with it;
    - one `fit` step of a functional model around the layer runs, its loss is finite and every
      trainable weight of the layer changes (so every weight gets a gradient), except those whose
    path ends with one of `expected_unchanged` (e.g. the attention key bias: softmax is
    invariant to the constant q.b_k it adds to every score, so its gradient is exactly 0).

    `input_data` is one array or a tuple of arrays (positional inputs); `call_kwargs` are passed
    to every call (e.g. an attention mask, fed as an extra model input when it is an array).
    Returns the eager output.
    """
    call_kwargs = dict(call_kwargs or {})
    inputs = tuple(input_data) if isinstance(input_data, (tuple, list)) else (input_data,)
    shapes = [tuple(x.shape) for x in inputs]

    # Build creates every weight.
    layer = layer_cls(**init_kwargs)
    layer.build(*shapes)
    assert layer.built
    num_weights = len(layer.weights)
    assert len(layer.trainable_weights) == expected_num_trainable_weights, [
        w.path for w in layer.trainable_weights]
    output = layer(*inputs, **call_kwargs)
    assert len(layer.weights) == num_weights, "call() created weights that build() did not"
    assert tuple(output.shape) == tuple(expected_output_shape)
    assert _shapes_match(tuple(layer.compute_output_shape(*shapes)), expected_output_shape)

    # Symbolic call on a fresh layer.
    sym_inputs = [keras.Input(shape=x.shape[1:], dtype=str(x.dtype), batch_size=None)
                  for x in inputs]
    sym_kwargs, kw_inputs = {}, []
    for key, value in call_kwargs.items():
        if isinstance(value, np.ndarray):
            sym_kwargs[key] = keras.Input(shape=value.shape[1:], dtype=str(value.dtype))
            kw_inputs.append((sym_kwargs[key], value))
        else:
            sym_kwargs[key] = value
    fresh = layer_cls(**init_kwargs)
    sym_output = fresh(*sym_inputs, **sym_kwargs)
    assert _shapes_match(tuple(sym_output.shape), expected_output_shape), (
        sym_output.shape, expected_output_shape)

    if run_training_step:
        model = keras.Model(sym_inputs + [t for t, _ in kw_inputs], sym_output)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        before = [keras.ops.convert_to_numpy(w) for w in fresh.trainable_weights]
        x = list(inputs) + [v for _, v in kw_inputs]
        target = np.random.default_rng(0).normal(size=tuple(output.shape)).astype("float32")
        history = model.fit(x, target, batch_size=len(inputs[0]), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        for w, b in zip(fresh.trainable_weights, before):
            changed = not np.allclose(keras.ops.convert_to_numpy(w), b)
            if w.path.endswith(tuple(expected_unchanged)):
                assert not changed, f"{w.path} was expected to get a zero gradient"
            else:
                assert changed, f"{w.path} got no update"
    return output


# ----------------------------------------------------------------------------------------------
# Independent numerical oracle
# ----------------------------------------------------------------------------------------------
def randomize_weights(model: keras.Model, stddev: float = 0.2, seed: int = 0) -> None:
    """Sets every weight to N(0, stddev) (LayerNorm gammas to 1 + N(0, stddev)), so a wrong
    transpose, a skipped bias or a swapped LayerNorm shows up in the outputs."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(scale=stddev, size=w.shape)
        if w.path.endswith("gamma"):
            value += 1.0
        w.assign(value.astype(w.dtype))


def _layer_norm(x, gamma, beta, epsilon=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


_erf = np.vectorize(__import__("math").erf)


def _gelu(x):
    """BERT's exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))."""
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


def numpy_bert_forward(weights_by_path: dict, inputs: dict, num_heads: int) -> dict:
    """BERT's forward pass (Devlin et al., 2019; Vaswani et al., 2017) in float64 NumPy.

    An oracle written from the papers, not from tfmask: embeddings sum -> LayerNorm; per block
    multi-head scaled dot-product self-attention with padded keys masked out, residual +
    LayerNorm (post-LN), exact-erf GELU feed-forward, residual + LayerNorm; tanh pooler on the
    first token. LayerNorm epsilon 1e-12.

    Args:
      weights_by_path: `{w.path: np.ndarray}` in the BERT layout `BertEncoder` documents
        (attention kernels `[H, heads, head_dim]`, output kernel `[heads, head_dim, H]`).
      inputs: `token_ids`, `segment_ids` [B, L] int, `padding_mask` [B, L] bool.
      num_heads: attention heads.
    Returns: `{"sequence_output": [B, L, H], "pooled_output": [B, H]}` float64.
    """
    w = {k: np.asarray(v, np.float64) for k, v in weights_by_path.items()}
    ids, segments = np.asarray(inputs["token_ids"]), np.asarray(inputs["segment_ids"])
    keep = np.asarray(inputs["padding_mask"], bool)  # [B, L]
    length = ids.shape[1]
    x = (w["token_embedding/embeddings"][ids]
         + w["position_embedding/embeddings"][:length][None]
         + w["segment_embedding/embeddings"][segments])  # [B, L, H]
    x = _layer_norm(x, w["embeddings_layer_norm/gamma"], w["embeddings_layer_norm/beta"])
    hidden = x.shape[-1]
    head_dim = hidden // num_heads
    num_layers = len({k.split("/")[0] for k in w if k.startswith("transformer_layer_")})
    for i in range(num_layers):
        p = f"transformer_layer_{i}/"
        a = p + "self_attention/"
        # [B, L, H] x [H, N, D] -> [B, L, N, D]
        q = np.einsum("blh,hnd->blnd", x, w[a + "query/kernel"]) + w[a + "query/bias"]
        k = np.einsum("blh,hnd->blnd", x, w[a + "key/kernel"]) + w[a + "key/bias"]
        v = np.einsum("blh,hnd->blnd", x, w[a + "value/kernel"]) + w[a + "value/bias"]
        scores = np.einsum("bqnd,bknd->bnqk", q, k) / np.sqrt(head_dim)  # [B, N, Lq, Lk]
        scores = np.where(keep[:, None, None, :], scores, -np.inf)  # padded keys get 0 weight
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        context = np.einsum("bnqk,bknd->bqnd", probs, v)  # [B, Lq, N, D]
        attended = (np.einsum("bqnd,ndh->bqh", context, w[a + "attention_output/kernel"])
                    + w[a + "attention_output/bias"])
        x = _layer_norm(x + attended, w[p + "self_attention_layer_norm/gamma"],
                        w[p + "self_attention_layer_norm/beta"])
        inner = _gelu(x @ w[p + "intermediate_dense/kernel"] + w[p + "intermediate_dense/bias"])
        out = inner @ w[p + "output_dense/kernel"] + w[p + "output_dense/bias"]
        x = _layer_norm(x + out, w[p + "output_layer_norm/gamma"], w[p + "output_layer_norm/beta"])
    pooled = np.tanh(x[:, 0] @ w["pooler_dense/kernel"] + w["pooler_dense/bias"])
    return {"sequence_output": x, "pooled_output": pooled}


@functools.cache
def two_cpu_strategy():
    """One `MirroredStrategy` over the two logical CPUs of conftest.py, shared by all tests.

    Several MirroredStrategy objects over the same devices in one process can reuse
    collective instance keys and abort with "Shape mismatch in the collective instance".
    """
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


WORDS = ("the a one some river city council market engineer painter bridge report train "
         "station museum built opened closed visited praised new old small large quiet busy "
         "north south morning evening because while after before and but").split()


def write_corpus(directory, num_lines=1500, seed=0):
    """Seeded pseudo-sentences, blank line every 8 lines (document ends)."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "corpus.txt")
    with open(path, "w") as fh:
        for i in range(num_lines):
            fh.write(" ".join(rng.choice(WORDS, size=rng.integers(4, 14))) + " .\n")
            if i % 8 == 7:
                fh.write("\n")
    return path


# --- synthetic BERT checkpoints (tests/test_checkpoints.py, fine-tuning from --init) -------

HIDDEN, HEADS, LAYERS, INTERMEDIATE, POSITIONS = 8, 2, 2, 16, 16
VOCAB = list(TINY_VOCAB)
BERT_CONFIG = {
    "vocab_size": len(VOCAB), "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE,
    "max_position_embeddings": POSITIONS, "type_vocab_size": 2, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
}


def google_bert_tensors(seed: int = 0, mlm: bool = True, nsp: bool = True) -> dict:
    """Random weights under the google-research/bert variable names (kernels [in, out])."""
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.normal(0, 0.3, shape).astype(np.float32)

    t = {"bert/embeddings/word_embeddings": r(len(VOCAB), HIDDEN),
         "bert/embeddings/position_embeddings": r(POSITIONS, HIDDEN),
         "bert/embeddings/token_type_embeddings": r(2, HIDDEN),
         "bert/embeddings/LayerNorm/gamma": 1 + r(HIDDEN),
         "bert/embeddings/LayerNorm/beta": r(HIDDEN),
         "bert/pooler/dense/kernel": r(HIDDEN, HIDDEN), "bert/pooler/dense/bias": r(HIDDEN)}
    for i in range(LAYERS):
        p = f"bert/encoder/layer_{i}/"
        for part in ("query", "key", "value"):
            t[f"{p}attention/self/{part}/kernel"] = r(HIDDEN, HIDDEN)
            t[f"{p}attention/self/{part}/bias"] = r(HIDDEN)
        t[f"{p}attention/output/dense/kernel"] = r(HIDDEN, HIDDEN)
        t[f"{p}attention/output/dense/bias"] = r(HIDDEN)
        t[f"{p}attention/output/LayerNorm/gamma"] = 1 + r(HIDDEN)
        t[f"{p}attention/output/LayerNorm/beta"] = r(HIDDEN)
        t[f"{p}intermediate/dense/kernel"] = r(HIDDEN, INTERMEDIATE)
        t[f"{p}intermediate/dense/bias"] = r(INTERMEDIATE)
        t[f"{p}output/dense/kernel"] = r(INTERMEDIATE, HIDDEN)
        t[f"{p}output/dense/bias"] = r(HIDDEN)
        t[f"{p}output/LayerNorm/gamma"] = 1 + r(HIDDEN)
        t[f"{p}output/LayerNorm/beta"] = r(HIDDEN)
    if mlm:
        t["cls/predictions/transform/dense/kernel"] = r(HIDDEN, HIDDEN)
        t["cls/predictions/transform/dense/bias"] = r(HIDDEN)
        t["cls/predictions/transform/LayerNorm/gamma"] = 1 + r(HIDDEN)
        t["cls/predictions/transform/LayerNorm/beta"] = r(HIDDEN)
        t["cls/predictions/output_bias"] = r(len(VOCAB))
    if nsp:
        t["cls/seq_relationship/output_weights"] = r(2, HIDDEN)
        t["cls/seq_relationship/output_bias"] = r(2)
    return t


def as_tfmask_weights(t: dict) -> dict:
    """The same weights keyed by tfmask variable path, MHA kernels split per head by hand."""
    d = HIDDEN // HEADS
    w = {"token_embedding/embeddings": t["bert/embeddings/word_embeddings"],
         "position_embedding/embeddings": t["bert/embeddings/position_embeddings"],
         "segment_embedding/embeddings": t["bert/embeddings/token_type_embeddings"],
         "embeddings_layer_norm/gamma": t["bert/embeddings/LayerNorm/gamma"],
         "embeddings_layer_norm/beta": t["bert/embeddings/LayerNorm/beta"],
         "pooler_dense/kernel": t["bert/pooler/dense/kernel"],
         "pooler_dense/bias": t["bert/pooler/dense/bias"]}
    for i in range(LAYERS):
        s, o = f"bert/encoder/layer_{i}/", f"transformer_layer_{i}/"
        for part in ("query", "key", "value"):
            w[f"{o}self_attention/{part}/kernel"] = t[f"{s}attention/self/{part}/kernel"].reshape(
                HIDDEN, HEADS, d)
            w[f"{o}self_attention/{part}/bias"] = t[f"{s}attention/self/{part}/bias"].reshape(
                HEADS, d)
        w[f"{o}self_attention/attention_output/kernel"] = t[
            f"{s}attention/output/dense/kernel"].reshape(HEADS, d, HIDDEN)
        w[f"{o}self_attention/attention_output/bias"] = t[f"{s}attention/output/dense/bias"]
        for ln, src in (("self_attention_layer_norm", "attention/output/LayerNorm"),
                        ("output_layer_norm", "output/LayerNorm")):
            w[f"{o}{ln}/gamma"], w[f"{o}{ln}/beta"] = t[f"{s}{src}/gamma"], t[f"{s}{src}/beta"]
        for dense, src in (("intermediate_dense", "intermediate/dense"),
                           ("output_dense", "output/dense")):
            w[f"{o}{dense}/kernel"], w[f"{o}{dense}/bias"] = (t[f"{s}{src}/kernel"],
                                                              t[f"{s}{src}/bias"])
    return w


def hf_state_dict(t: dict, prefix: str = "bert.", layer_norm=("weight", "bias")) -> dict:
    """The same weights under Hugging Face names (Linear weights [out, in])."""
    gamma, beta = layer_norm
    out = {}
    for name, value in t.items():
        if name.startswith("cls/seq_relationship/"):
            key = "cls.seq_relationship." + ("weight" if name.endswith("weights") else "bias")
        elif name == "cls/predictions/output_bias":
            key = "cls.predictions.bias"
        else:
            parts = name.split("/")
            if parts[0] == "bert":
                parts = parts[1:]
            key = ".".join(parts).replace("layer_", "layer.")
            if not name.startswith("cls/"):
                key = prefix + key
            if key.endswith("LayerNorm.gamma"):
                key = key[: -len("gamma")] + gamma
            elif key.endswith("LayerNorm.beta"):
                key = key[: -len("beta")] + beta
            elif key.endswith("_embeddings"):
                key += ".weight"
            elif key.endswith(".kernel"):
                key, value = key[: -len("kernel")] + "weight", value.T
        out[key] = np.ascontiguousarray(value)
    out[prefix + "embeddings.position_ids"] = np.arange(POSITIONS, dtype=np.int64)[None]
    return out


def write_hf_folder(directory, state: dict, config=None, tokenizer_config=None, vocab=None):
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    save_file(state, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as fh:
        json.dump({"model_type": "bert", "architectures": ["BertForMaskedLM"],
                   **(config or BERT_CONFIG)}, fh)
    with open(os.path.join(directory, "vocab.txt"), "w") as fh:
        fh.write("\n".join(vocab or VOCAB) + "\n")
    if tokenizer_config is not None:
        with open(os.path.join(directory, "tokenizer_config.json"), "w") as fh:
            json.dump(tokenizer_config, fh)
    return str(directory)


def write_google_folder(directory, t: dict, extra: dict | None = None, vocab=None):
    """An original-BERT folder: bert_config.json, bert_model.ckpt.{index,data-*}, vocab.txt,
    written with SaveV2 so variable names are exactly the canonical ones."""
    os.makedirs(directory, exist_ok=True)
    tensors = {**t, **(extra or {})}
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=os.path.join(str(directory), "bert_model.ckpt"),
                      tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    with open(os.path.join(directory, "bert_config.json"), "w") as fh:
        json.dump(BERT_CONFIG, fh)
    with open(os.path.join(directory, "vocab.txt"), "w") as fh:
        fh.write("\n".join(vocab or VOCAB) + "\n")
    return str(directory)


# --- fine-tuning -------------------------------------------------------------------------

def finetune_experiment(task, train, valid, **train_fields):
    """A small `FinetuneExperiment` on the given files; `train_fields` set `experiment.train`."""
    from tfmask.config import FinetuneExperiment

    e = FinetuneExperiment(task=task)
    e.data.train, e.data.valid = train, valid
    e.train.vocabulary_size = 2000
    for k, v in train_fields.items():
        setattr(e.train, k, v)
    return e


# --- datasets and exports: the checks STYLE section 8 lists --------------------------------

def _leaves(structure, path=""):
    """`(path, leaf)` pairs of a nest of dicts, tuples and lists, in a fixed order."""
    if isinstance(structure, dict):
        return [p for k in sorted(structure) for p in _leaves(structure[k], f"{path}/{k}")]
    if isinstance(structure, (tuple, list)):
        return [p for i, v in enumerate(structure) for p in _leaves(v, f"{path}/{i}")]
    return [(path or "/", structure)]


def _as_lists(value):
    """A tensor, ragged tensor or array as nested Python lists (so ragged == dense by value)."""
    if isinstance(value, tf.RaggedTensor):
        return value.to_list()
    return np.asarray(value).tolist()


def _assert_same_values(a, b, where: str, atol: float) -> None:
    if isinstance(a, list) or isinstance(b, list):
        assert isinstance(a, list) and isinstance(b, list) and len(a) == len(b), (
            f"{where}: {a!r} != {b!r}")
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_values(x, y, f"{where}[{i}]", atol)
    elif isinstance(a, float) or isinstance(b, float):
        assert abs(a - b) <= atol, f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_structure_and_values(expected, actual, what: str, atol: float = 1e-6) -> None:
    """Two nests of (ragged) tensors hold the same keys and, leaf by leaf, the same values."""
    expected, actual = _leaves(expected), _leaves(actual)
    assert [p for p, _ in expected] == [p for p, _ in actual], (
        f"{what}: structure {[p for p, _ in actual]} != {[p for p, _ in expected]}")
    for (path, e), (_, a) in zip(expected, actual):
        _assert_same_values(_as_lists(e), _as_lists(a), f"{what} {path}", atol)


def model_input_names(model: keras.Model) -> set[str]:
    """The names of a functional model's inputs (`token_ids`, `segment_ids`, ...)."""
    inputs = model.input
    if isinstance(inputs, dict):
        return set(inputs)
    return {t.name for t in keras.tree.flatten(inputs)}


def assert_dataset_feeds_model(dataset: tf.data.Dataset, model: keras.Model):
    """`x` of the dataset's elements (the first item of `(x, y, sample_weight)`, or the element
    itself) has exactly the model's input names, and the model runs on one batch of it.

    Returns the model's output on that batch.
    """
    spec = dataset.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    assert isinstance(x_spec, dict), f"x is not a dict of named inputs: {x_spec}"
    assert set(x_spec) == model_input_names(model), (
        f"dataset keys {sorted(x_spec)} != model inputs {sorted(model_input_names(model))}")
    batch = next(iter(dataset))
    x = batch[0] if isinstance(batch, tuple) else batch
    return model(x, training=False)


def run_dataset_test(fn, inputs, model: keras.Model | None = None, *,
                     unbatched: str | None = "example", atol: float = 1e-6):
    """One call that checks a function written for `tf.data.Dataset.map`.

    `inputs` is one batch: a (ragged) tensor, array, dict or tuple of them with a leading
    batch dimension B (a tuple is passed as positional arguments, as `map` does). Three ways
    of computing the same batch must give the same values (ragged and dense compared by
    value, floats to `atol`):

      eager            `fn(inputs)` on the whole batch, outside any graph;
      batched map      `from_tensor_slices(inputs).ragged_batch(B).map(fn)`: the same batch
                       traced in a tf.data graph;
      unbatched map    each example mapped on its own, then `ragged_batch(B)`; how depends on
                       `unbatched`:
        "example"  `fn` takes one example as well as a batch (e.g. one sentence's words [W]
                   as well as sentences [S, (W)]);
        "row"      `fn` takes batches only: each example goes through as a batch of one, and
                   its row must equal its row of the whole batch (no row sees another);
        None       `fn` draws per batch (a stateless random op shaped like the batch): a row
                   alone legitimately differs, so only eager == batched map is checked.

    With a `model`, `fn` returns `x` (or `(x, y, sample_weight)`): the batched dataset's
    `element_spec` keys of `x` equal the model's input names, and the model runs on it.

    Returns the eager output.
    """
    if unbatched not in ("example", "row", None):
        raise ValueError(f"unbatched must be 'example', 'row' or None, got {unbatched!r}")
    call = (lambda args: fn(*args)) if isinstance(inputs, tuple) else fn
    eager = call(inputs)
    slices = tf.data.Dataset.from_tensor_slices(inputs)
    size = int(slices.cardinality())

    batched_ds = slices.ragged_batch(size).map(lambda *args: call(
        args if isinstance(inputs, tuple) else args[0]))
    assert_same_structure_and_values(eager, batched_ds.get_single_element(),
                                     "eager vs batched map", atol)

    if unbatched is not None:
        ragged = [isinstance(leaf, tf.RaggedTensor) for _, leaf in _leaves(inputs)]

        def one(*args):
            example = args if isinstance(inputs, tuple) else args[0]
            if unbatched == "example":
                return call(example)
            flags = iter(ragged)

            def batch_of_one(t):
                t = tf.expand_dims(t, 0)
                return tf.RaggedTensor.from_tensor(t) if next(flags) else t

            out = call(tf.nest.map_structure(batch_of_one, example))
            return tf.nest.map_structure(lambda t: t[0], out)

        unbatched_out = slices.map(one).ragged_batch(size).get_single_element()
        assert_same_structure_and_values(eager, unbatched_out, "eager vs unbatched map", atol)

    if model is not None:
        assert_dataset_feeds_model(batched_ds, model)
    return eager


def run_export_test(export_dir: str, keras_model: keras.Model, inputs: dict,
                    signatures=None, logits: str = "logits", atol: float = 1e-5) -> dict:
    """Reloads a SavedModel with `tf.saved_model.load`, calls every signature, and compares
    it with the Keras model it was exported from.

    Args:
      export_dir: a SavedModel directory (e.g. `saved_models/NAME/1`).
      keras_model: the model the export serves.
      inputs: a value for every input name of every signature, one batch of B rows each:
        the model's integer inputs (`token_ids`, `segment_ids`, `padding_mask`, and
        `mask_positions` for fill-mask) and `text` ([B] strings) for string-in signatures. A
        signature whose input is missing here fails, so every signature gets called.
      signatures: the exact set of signature names the export must have (None: not checked).
      logits: the output that holds the model's logits in signatures fed the model's inputs.
      atol: tolerance of the Keras comparison.

    Checks:
      - every signature runs, and every output has B rows;
      - a signature whose inputs are exactly the Keras model's returns `logits` equal to
        `keras_model(inputs)` (for a dict-output model: every output name both share);
      - signatures with the same input names return the same outputs (`serving_default` is
        `serve_text`, or `serve` in an ids-only export).

    Returns:
      `{signature name: {output name: np.ndarray}}`.
    """
    loaded = tf.saved_model.load(export_dir)
    if signatures is not None:
        assert set(loaded.signatures) == set(signatures), (
            f"{export_dir}: signatures {sorted(loaded.signatures)} != {sorted(signatures)}")
    model_names = model_input_names(keras_model)
    outputs, by_inputs = {}, {}
    for name, function in sorted(loaded.signatures.items()):
        specs = function.structured_input_signature[1]  # {input name: TensorSpec}
        missing = sorted(set(specs) - set(inputs))
        assert not missing, f"{export_dir}: signature {name!r} needs inputs {missing}"
        feed = {k: tf.constant(inputs[k], dtype=spec.dtype) for k, spec in specs.items()}
        rows = {int(v.shape[0]) for v in feed.values()}
        assert len(rows) == 1, f"{name}: inputs of different batch sizes {rows}"
        out = {k: v.numpy() for k, v in function(**feed).items()}
        bad_rows = {k: v.shape for k, v in out.items() if not v.shape or v.shape[0] not in rows}
        assert not bad_rows, f"{name}: outputs without {rows} rows: {bad_rows}"
        outputs[name] = out

        if set(specs) == model_names:
            expected = keras_model({k: feed[k] for k in model_names}, training=False)
            if isinstance(expected, dict):
                shared = sorted(set(expected) & set(out))
                assert shared, f"{name}: no output in common with the model: {sorted(out)}"
                pairs = [(k, expected[k]) for k in shared]
            else:
                assert logits in out, f"{name}: no {logits!r} output: {sorted(out)}"
                pairs = [(logits, expected)]
            for key, value in pairs:
                np.testing.assert_allclose(out[key], keras.ops.convert_to_numpy(value),
                                           atol=atol, err_msg=f"{export_dir} {name} {key}")
        same = by_inputs.setdefault(tuple(sorted(specs)), name)
        if same != name:
            assert_same_structure_and_values(outputs[same], out, f"{name} vs {same}", atol=0)
    return outputs
