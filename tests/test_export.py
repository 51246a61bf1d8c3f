"""SavedModel export: reload parity with the Keras models and with `tfmask evaluate`, the
layout TF Serving expects, malformed inputs, a process without tensorflow_text, op audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from tfmask import runs
from tfmask.serve import audit as op_audit
from tfmask.serve import export, warmup
from tfmask.text import finetuning_data
from tfmask.text.labels import label_codes
from tfmask.train import metrics
from tfmask.text.examples import Examples, load_split
from tfmask.train.evaluation import Evaluator

KINDS = ("sentiment", "ner", "fill_mask")


def _load(exported, kind, ids=False):
    return tf.saved_model.load(exported[kind]["ids" if ids else "text"]["path"])


def _serve_text(exported, kind, texts):
    module = _load(exported, kind)
    out = module.signatures["serving_default"](text=tf.constant(texts, tf.string))
    return {k: v.numpy() for k, v in out.items()}


def _keras_model(run_dir, kind):
    if kind == "fill_mask":
        return runs.load_masked_lm(run_dir)
    return runs.load_finetuned(run_dir)[1]


def _random_ids(kind, vocabulary_size, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocabulary_size, (3, 9)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[2, 6:] = 0
    inputs = {"token_ids": ids * mask, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
    if kind == "fill_mask":
        inputs["mask_positions"] = np.array([[1, 2], [3, 4], [1, 5]], np.int32)
    return inputs


# --- layout, audit, warm-up -----------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_layout_versions_and_assets(exported, kind):
    base = exported["base"]
    text, ids = exported[kind]["text"], exported[kind]["ids"]
    assert text["path"] == os.path.join(base, kind, "1") and text["version"] == 1
    assert ids["path"] == os.path.join(base, f"{kind}-ids", "1")
    assert os.path.exists(os.path.join(text["path"], "saved_model.pb"))
    assets = os.listdir(os.path.join(text["path"], "assets"))
    assert "vocab.txt" in assets and (("labels.txt" in assets) == (kind != "fill_mask"))
    assert os.path.exists(os.path.join(text["path"], "assets.extra",
                                       "tf_serving_warmup_requests"))
    assert not [n for n in os.listdir(os.path.join(base, kind)) if n.startswith(".")]


@pytest.mark.parametrize("kind", KINDS)
def test_exports_hold_the_model_weights_only(exported, kind):
    """No optimizer variable: each SavedModel's variables are the Keras model's weights, value
    for value (what TF Serving loads into memory)."""
    model = _keras_model(exported["runs"][kind], kind)
    for which in ("text", "ids"):
        variables = dict(tf.train.list_variables(
            os.path.join(exported[kind][which]["path"], "variables", "variables")))
        variables.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
        assert [name for name in variables if "optimizer" in name] == []
        assert sum(int(np.prod(shape)) for shape in variables.values()) == sum(
            int(np.prod(w.shape)) for w in model.weights)


@pytest.mark.parametrize("kind", KINDS)
def test_op_audit(exported, kind):
    path = os.path.join(exported[kind]["text"]["path"], "assets.extra", "op_audit.json")
    audit = json.load(open(path))["signatures"]
    assert audit["serve"]["core_ops_only"] and audit["serve"]["tensorflow_text_ops"] == []
    text_ops = set(audit["serve_text"]["tensorflow_text_ops"])
    assert "FastWordpieceTokenizeWithOffsets" in text_ops
    assert not text_ops & set(op_audit.MISSING_BEFORE_SERVING_2_20)
    assert audit["serve_text"]["min_tf_serving"] == "2.20"
    assert not set(audit["serve_text"]["ops"]) & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


def test_audit_refuses_a_py_function():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def with_python(text):
        return tf.py_function(lambda t: t, [text], tf.string)

    with pytest.raises(op_audit.ExportError, match=r"signature 'serve_text' calls Python"):
        op_audit.audit({"serve_text": with_python.get_concrete_function()})


@pytest.mark.parametrize("kind", KINDS)
def test_warmup_requests_are_prediction_logs_the_model_answers(exported, kind):
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    path = os.path.join(exported[kind]["text"]["path"], "assets.extra",
                        "tf_serving_warmup_requests")
    records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    request = log.predict_log.request
    assert request.model_spec.name == kind
    assert request.model_spec.signature_name == "serving_default"
    texts = tf.make_ndarray(request.inputs["text"])
    assert [t.decode() for t in texts] == warmup.WARMUP_TEXTS[kind]
    out = _serve_text(exported, kind, [t.decode() for t in texts])
    assert all(v.shape[0] == len(texts) for v in out.values())


def test_saved_model_cli_lists_the_documented_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip("saved_model_cli is not in this environment's bin/")
    shown = subprocess.run([cli, "show", "--dir", exported["ner"]["text"]["path"], "--all"],
                           capture_output=True, text=True, check=True).stdout
    for signature in ("serving_default", "serve_text", "serve"):
        assert f"signature_def['{signature}']" in shown
    for name in ("inputs['text']", "inputs['token_ids']", "outputs['entity_start']",
                 "outputs['tags']", "outputs['probabilities']"):
        assert name in shown, name


# --- parity with the Keras models -------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_serve_matches_the_keras_model(exported, kind):
    model = _keras_model(exported["runs"][kind], kind)
    inputs = _random_ids(kind, runs.load_tokenizer(exported["runs"][kind]).vocabulary_size)
    expected = np.asarray(model(inputs, training=False))
    for ids in (False, True):
        out = _load(exported, kind, ids).signatures["serve"](
            **{k: tf.constant(v) for k, v in inputs.items()})
        np.testing.assert_allclose(out["logits"].numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)


def test_sentiment_serve_text_matches_keras_on_python_side_batches(exported, data_dir):
    from tfmask.text import readers

    run = exported["runs"]["sentiment"]
    experiment, model, tokenizer = runs.load_finetuned(run)
    texts, labels, _ = readers.read_classification(data_dir["sentiment_dev"])
    texts = texts[:40]
    ds = finetuning_data.classification_dataset(texts, labels[:40], tokenizer,
                                              experiment.data.max_sequence_length, 40)
    x, _, _ = next(iter(ds))
    expected = tf.nn.softmax(model(x, training=False)).numpy()
    out = _serve_text(exported, "sentiment", texts)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    names = np.array(experiment.labels)
    assert [t.decode() for t in out["label"]] == names[expected.argmax(-1)].tolist()
    assert out["label_id"].tolist() == expected.argmax(-1).tolist()


def test_ner_serve_text_tags_every_word_as_evaluate_does(exported, data_dir):
    run = exported["runs"]["ner"]
    experiment, model, tokenizer = runs.load_finetuned(run)
    examples, _ = load_split(experiment, data_dir["ner_valid"],
                                        labels=experiment.labels)
    words, labels = examples.texts[:60], examples.label_ids[:60]
    # One long sentence (> 126 pieces) so serving goes through overlapping windows too.
    words.append([w for s in examples.texts[60:80] for w in s])
    labels.append([t for s in examples.label_ids[60:80] for t in s])
    long_example = Examples("test", words, labels)
    evaluator = Evaluator("ner", long_example, experiment.labels, tokenizer,
                                     experiment.data.max_sequence_length)
    predicted, _ = evaluator.predict(model)
    out = _serve_text(exported, "ner", [" ".join(w) for w in words])
    assert sum(len(p) for p in tokenizer.tokenize_words([" ".join(words[-1])]).numpy()
               [0]) > 126
    for i, sentence in enumerate(words):
        n = out["num_words"][i]
        assert [w.decode() for w in out["words"][i][:n]] == sentence
        assert [t.decode() for t in out["tags"][i][:n]] == [
            experiment.labels[j] for j in predicted[i]], i


def test_entity_offsets_slice_the_input(exported, data_dir):
    experiment, _, _ = runs.load_finetuned(exported["runs"]["ner"])
    examples, _ = load_split(experiment, data_dir["ner_valid"],
                                        labels=experiment.labels)
    texts = ["Zoë 🍕 東京 " + " ".join(w) for w in examples.texts[:80]]
    out = _serve_text(exported, "ner", texts)
    found = 0
    for i, text in enumerate(texts):
        raw = text.encode("utf-8")
        tags = [t.decode() for t in out["tags"][i][: out["num_words"][i]]]
        spans = metrics.entity_spans(tags)
        assert out["num_entities"][i] == len(spans)
        for j, (entity_type, first, last) in enumerate(spans):
            start, end = out["entity_start"][i][j], out["entity_end"][i][j]
            assert raw[start:end].decode("utf-8") == out["entity_text"][i][j].decode()
            words = [w.decode() for w in out["words"][i][first:last]]
            assert out["entity_text"][i][j].decode() == " ".join(words)
            assert out["entity_type"][i][j].decode() == entity_type
            found += 1
    assert found > 10  # the half-trained model predicts entities to check


def test_in_graph_entity_chunks_equal_metrics_entity_spans():
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "E-PER", "S-ORG"]
    prefix, type_ids, types = label_codes(labels)
    rng = np.random.default_rng(0)
    tags = rng.integers(0, len(labels), (200, 12))
    lengths = rng.integers(0, 13, 200)
    row, start, end, entity_type = (t.numpy() for t in export.entity_chunks(
        tf.gather(prefix, tags), tf.gather(type_ids, tags), tf.constant(lengths, tf.int32)))
    got = [[] for _ in range(200)]
    for r, s, e, k in zip(row, start, end, entity_type):
        got[r].append((types[k], s, e))
    for i in range(200):
        assert got[i] == metrics.entity_spans([labels[t] for t in tags[i][: lengths[i]]]), i


def test_fill_mask_serve_text_matches_the_masked_lm(exported):
    run = exported["runs"]["fill_mask"]
    model, tokenizer = runs.load_masked_lm(run), runs.load_tokenizer(run)
    texts = ["the cat [MASK] on the mat", "[MASK] [MASK] sat", "no mask here"]
    out = _serve_text(exported, "fill_mask", texts)
    assert out["num_masks"].tolist() == [1, 2, 0]
    vocab = np.array(tokenizer.vocab)
    for i, text in enumerate(texts):
        segments = text.split("[MASK]")
        ids = []
        for k, segment in enumerate(segments):
            ids += tokenizer.tokenize_words([segment]).merge_dims(1, 2)[0].numpy().tolist()
            if k < len(segments) - 1:
                ids.append(tokenizer.mask_token_id)
        ids = [tokenizer.cls_token_id] + ids + [tokenizer.sep_token_id]
        positions = [p for p, t in enumerate(ids) if t == tokenizer.mask_token_id]
        if not positions:
            continue
        logits = model({"token_ids": np.array([ids], np.int32),
                        "segment_ids": np.zeros((1, len(ids)), np.int32),
                        "padding_mask": np.ones((1, len(ids)), np.int32),
                        "mask_positions": np.array([positions], np.int32)})
        probabilities = tf.nn.softmax(logits).numpy()[0]
        for p in range(len(positions)):
            top = np.argsort(-probabilities[p])[:5]
            assert [t.decode() for t in out["tokens"][i][p]] == vocab[top].tolist()
            np.testing.assert_allclose(out["probabilities"][i][p], probabilities[p][top],
                                       atol=1e-5)


# --- malformed inputs -------------------------------------------------------------------------

MALFORMED = ["", "   \t\n ", "word " * 20_000, b"\xff\xfe\x80 broken \xc3( bytes",
             "東京は日本の首都です 🍕🍕 café naïve", "[MASK]"]


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_inputs_give_well_formed_outputs(exported, kind):
    out = _serve_text(exported, kind, MALFORMED)
    assert all(v.shape[0] == len(MALFORMED) for v in out.values()), {
        k: v.shape for k, v in out.items()}
    if kind == "ner":
        assert out["num_words"].tolist()[:2] == [0, 0] and out["num_words"][2] == 20_000
        assert "broken" in [w.decode() for w in out["words"][3]]
    if kind == "sentiment":
        np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
    empty = _serve_text(exported, kind, [])
    assert all(v.shape[0] == 0 for v in empty.values())


# --- serving processes ------------------------------------------------------------------------

def test_ids_export_loads_in_a_process_without_tensorflow_text(exported, tmp_path):
    kind = "sentiment"
    model = _keras_model(exported["runs"][kind], kind)
    inputs = _random_ids(kind, runs.load_tokenizer(exported["runs"][kind]).vocabulary_size)
    np.savez(tmp_path / "inputs.npz", **inputs)
    np.save(tmp_path / "expected.npy", np.asarray(model(inputs, training=False)))
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "x = dict(np.load(sys.argv[2] + '/inputs.npz'))\n"
        "out = m.signatures['serve'](**{k: tf.constant(v) for k, v in x.items()})\n"
        "np.testing.assert_allclose(out['logits'].numpy(), np.load(sys.argv[2] + "
        "'/expected.npy'), atol=1e-5)\n"
        "assert 'tensorflow_text' not in sys.modules\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script, exported[kind]["ids"]["path"],
                           str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_predict_cli_in_a_clean_process_agrees_with_evaluate(exported, data_dir, tmp_path):
    from tfmask.text import readers

    run = exported["runs"]["sentiment"]
    experiment, model, tokenizer = runs.load_finetuned(run)
    texts, labels, _ = readers.read_classification(data_dir["sentiment_dev"])
    texts, labels = texts[:30], labels[:30]
    evaluator = Evaluator("sentiment", Examples("dev", texts, labels),
                                     experiment.labels, tokenizer,
                                     experiment.data.max_sequence_length)
    predicted, _ = evaluator.predict(model)
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    script = (
        "import sys\n"
        "from tfmask.cli import main\n"
        "code = main(['predict', sys.argv[1], '--file', sys.argv[2]])\n"
        "heavy = [m for m in ('keras_hub', 'tfmask.train.finetuning', 'tfmask.text.finetuning_data', "
        "'tfmask.serve.export') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", script,
                           os.path.dirname(exported["sentiment"]["text"]["path"]),
                           str(tmp_path / "texts.txt")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["text"] for r in records] == texts
    assert [r["label_id"] for r in records] == predicted
    assert [r["label"] for r in records] == [experiment.labels[p] for p in predicted]


def test_parallel_exports_get_distinct_versions(sentiment_run, tmp_path):
    cmd = [sys.executable, "-m", "tfmask", "export", sentiment_run[0], "--name", "par",
           "--base-dir", str(tmp_path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-1000:] for r in results]
    assert sorted(os.listdir(tmp_path / "par")) == ["1", "2"]
    assert sorted(os.listdir(tmp_path / "par-ids")) == ["1", "2"]


def test_publish_never_overwrites_a_version(tmp_path):
    """Many writers racing for the next version each get their own, the same number in
    NAME/ and NAME-ids/."""
    from tfmask.serve import publishing

    text_dir, ids_dir = tmp_path / "m", tmp_path / "m-ids"
    text_dir.mkdir()
    ids_dir.mkdir()
    (text_dir / "1").mkdir()  # a stray version without its ids twin: skipped by both
    sources = []
    for i in range(8):
        pair = []
        for folder in (text_dir, ids_dir):
            source = folder / f".tmp-{i}"
            source.mkdir()
            (source / "id").write_text(str(i))
            pair.append(str(source))
        sources.append(pair)
    versions = []
    threads = [threading.Thread(target=lambda s=s: versions.append(publishing.publish_pair(
        s[0], str(text_dir), s[1], str(ids_dir)))) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions) == list(range(2, 10))
    for v in versions:
        assert (text_dir / str(v) / "id").read_text() == (ids_dir / str(v) / "id").read_text()
    ids = sorted((text_dir / str(v) / "id").read_text() for v in versions)
    assert ids == [str(i) for i in range(8)]


def test_export_errors(tmp_path, capsys):
    from tfmask.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "--name", "x"]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing"), "--name", "x"]) == 2
    assert "no such run directory" in capsys.readouterr().err


# --- the oldest supported server's runtime, and gRPC --------------------------------------------

def test_exports_load_in_tensorflow_2_20(exported, tmp_path):
    """TF Serving 2.20 links TensorFlow 2.20 + tensorflow-text 2.20: load every export in that
    runtime and compare its serve_text outputs with this one's. Optional: set
    TFMASK_TF220_PYTHON to a python with tensorflow==2.20.* and tensorflow-text==2.20.*."""
    python = os.environ.get("TFMASK_TF220_PYTHON")
    if not python:
        pytest.skip("set TFMASK_TF220_PYTHON to a TensorFlow 2.20 + tensorflow-text 2.20 "
                    "python to run this check")
    texts = ["Zoë visited Paris .", "", "the [MASK] sat on the mat", "東京 🍕"]
    script = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "def clean(x):\n"
        "    if isinstance(x, list):\n"
        "        return [clean(i) for i in x]\n"
        "    return x.decode() if isinstance(x, bytes) else x\n"
        "out = {}\n"
        "for path in sys.argv[2:]:\n"
        "    m = tf.saved_model.load(path)\n"
        "    r = m.signatures['serving_default'](text=tf.constant(json.loads(sys.argv[1])))\n"
        "    out[path] = {k: clean(v.numpy().tolist()) for k, v in r.items()}\n"
        "print(tf.__version__)\n"
        "print(json.dumps(out))\n")
    paths = [exported[k]["text"]["path"] for k in KINDS]
    done = subprocess.run([python, "-c", script, json.dumps(texts), *paths],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    version, payload = done.stdout.strip().splitlines()[-2:]
    assert version.startswith("2.20")
    theirs = json.loads(payload)
    for kind, path in zip(KINDS, paths):
        ours = _serve_text(exported, kind, texts)
        for key, value in ours.items():
            if value.dtype.kind in "fi":
                np.testing.assert_allclose(np.asarray(theirs[path][key]), value, atol=1e-4,
                                           err_msg=f"{kind} {key}")
            else:
                decoded = [b.decode() for b in value.ravel()]
                assert np.asarray(theirs[path][key]).ravel().tolist() == decoded, \
                    f"{kind} {key}"


def test_grpc_client_against_a_prediction_service(exported):
    """pipelines/grpc_client.py against a gRPC PredictionService that answers from the
    export (TF Serving's own protos and service definition; no Docker needed)."""
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    from tensorflow_serving.apis import predict_pb2

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pipelines"))
    import grpc_client

    signatures = _load(exported, "sentiment").signatures

    class Service(apis.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802  (gRPC method name)
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            outputs = signatures[request.model_spec.signature_name](**inputs)
            response = predict_pb2.PredictResponse()
            for k, v in outputs.items():
                response.outputs[k].CopyFrom(tf.make_tensor_proto(v.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    apis.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    try:
        texts = ["a gripping , funny and moving film .", "dull ."]
        got = grpc_client.predict(f"localhost:{port}", "sentiment", texts)
    finally:
        server.stop(0)
    expected = _serve_text(exported, "sentiment", texts)
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-6)
    assert got["label"].tolist() == expected["label"].tolist()


# --- the shared export check; every .keras file of a run after a bare `import tfmask` ---------

@pytest.mark.parametrize("kind", KINDS)
def test_every_signature_of_both_exports_reloads_and_matches_keras(exported, kind):
    from helpers import run_export_test

    run = exported["runs"][kind]
    model = _keras_model(run, kind)
    ids = _random_ids(kind, runs.load_tokenizer(run).vocabulary_size)
    texts = ["the cat [MASK] on the mat .", "Zoë visited Paris .", ""]  # B = 3, as ids
    served = run_export_test(exported[kind]["text"]["path"], model, {**ids, "text": texts},
                             signatures={"serving_default", "serve_text", "serve"})
    ids_only = run_export_test(exported[kind]["ids"]["path"], model, ids,
                               signatures={"serving_default", "serve"})
    for key, value in served["serve"].items():  # the two exports serve ids alike
        np.testing.assert_allclose(ids_only["serve"][key], value, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(served["serve"]["probabilities"],
                               tf.nn.softmax(served["serve"]["logits"]).numpy(), atol=1e-6)


def test_every_keras_file_of_a_run_loads_after_a_bare_import_tfmask(
        pretraining_run, ner_run, sentiment_run, fill_mask_run, tmp_path):
    """`import tfmask` registers every class a `.keras` file names, without loading
    TensorFlow itself: a new user's `import tfmask, keras; keras.saving.load_model(PATH)`."""
    from pathlib import Path

    expected = {
        pretraining_run[0]: {"encoder.keras": "BertEncoder", "masked_lm.keras": "MaskedLM"},
        fill_mask_run: {"encoder.keras": "BertEncoder", "masked_lm.keras": "MaskedLM"},
        ner_run[0]: {"model.keras": "TokenClassifier"},
        sentiment_run[0]: {"model.keras": "SequenceClassifier"},
    }
    classes = {}  # every .keras file of each run -> the class it must load as (None: any)
    for run, names in expected.items():
        found = {str(p.relative_to(run)): str(p) for p in Path(run).rglob("*.keras")}
        assert set(names) <= set(found), (run, sorted(found))
        classes.update({path: names.get(name) for name, path in found.items()})
    script = (
        "import sys\n"
        "import tfmask\n"
        "early = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not early, f'import tfmask imported {early}'\n"
        "import keras\n"
        "for path in sys.argv[1:]:\n"
        "    print(path, type(keras.saving.load_model(path)).__name__, sep='\\t')\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", script, *classes], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=repo))
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = dict(line.split("\t") for line in done.stdout.splitlines() if "\t" in line)
    assert set(loaded) == set(classes), done.stdout
    for path, name in classes.items():
        assert name is None or loaded[path] == name, (path, loaded[path])


def test_predict_rest_prints_tf_servings_row_format_body(exported, capsys):
    """`tfmask predict --rest`: TF Serving's REST response for one row-format request, with
    the values `predict` reports per text."""
    from tfmask.serve import predict

    for kind, texts in (("sentiment", ["the cat sat on the mat .", "a dog"]),
                        ("ner", ["Peter visited Brussels .", "hello"])):
        path = os.path.dirname(exported[kind]["text"]["path"])
        assert predict.main(path, texts, rest=True) == 0
        body = json.loads(capsys.readouterr().out)
        rows, records = body["predictions"], predict.predict(path, texts)
        assert len(rows) == len(texts)
        if kind == "sentiment":
            assert set(rows[0]) == {"label", "label_id", "probabilities"}
            assert [r["label"] for r in rows] == [r["label"] for r in records]
            np.testing.assert_allclose([r["probabilities"] for r in rows],
                                       [list(r["probabilities"].values()) for r in records],
                                       rtol=1e-6)
        else:
            for row, record in zip(rows, records):
                n, e = row["num_words"], row["num_entities"]
                assert row["words"][:n] == record["words"] and row["tags"][:n] == record["tags"]
                assert row["entity_text"][:e] == [x["text"] for x in record["entities"]]
