"""Sentence-pair classification: readers (TSV/CSV columns, TFDS GLUE pair datasets), the
`[CLS] A [SEP] B [SEP]` pipeline, GLUE's binary F1, a tiny `classify` run, and its export
(`serve_text` with `text` and `text_pair`, `tfmask predict` with a tab)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_tokenizer
from tfmask import cli, runs
from tfmask.config import FinetuneExperiment
from tfmask.serve import export, predict
from tfmask.text import finetuning_data, readers
from tfmask.text.examples import load_split, load_train_valid
from tfmask.text.packing import longest_first
from tfmask.train.evaluation import Evaluator
from tfmask.train.metrics import classification_scores

tfds = pytest.importorskip("tensorflow_datasets")


# --- readers ----------------------------------------------------------------------------------

def test_read_classification_pairs_by_name_and_index(tmp_path):
    path = tmp_path / "mrpc.tsv"
    path.write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                    "1\t10\t11\tHe said so .\tHe told us .\n"
                    "0\t12\t13\t\"Odd quote\tNothing alike .\n", encoding="utf-8")
    texts, labels, names = readers.read_classification(
        str(path), text_column="#1 String", text_pair_column="#2 String",
        label_column="Quality")
    assert texts == [("He said so .", "He told us ."), ('"Odd quote', "Nothing alike .")]
    assert labels == [1, 0] and names == ["0", "1"]
    csv = tmp_path / "pairs.csv"
    csv.write_text('"a, b",c d,yes\ne,f,no\n', encoding="utf-8")
    texts, labels, names = readers.read_classification(str(csv), text_column=0,
                                                       text_pair_column=1, header=False)
    assert texts == [("a, b", "c d"), ("e", "f")] and names == ["no", "yes"]
    assert labels == [1, 0]


def test_pair_reader_errors_name_file_and_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("premise\thypothesis\tlabel\nA .\t \tentailment\n", encoding="utf-8")
    with pytest.raises(readers.ReaderError, match=r"pairs.tsv:2: empty text_pair in column "
                                                  r"'hypothesis'"):
        readers.read_classification(str(path), "premise", text_pair_column="hypothesis")
    with pytest.raises(readers.ReaderError, match=r"pairs.tsv:1: text_pair_column='premise' "
                                                  r"is the text column \(0\)"):
        readers.read_classification(str(path), "premise", text_pair_column="premise")


# --- TFDS: the real GLUE builders, prepared from local examples in a temporary data_dir -------

GLUE_PAIRS = {  # config: (first feature, second feature, examples)
    "mnli": ("premise", "hypothesis", [("A man sleeps .", "A man is awake .", 2),
                                      ("Kids play .", "Children play .", 0)]),
    "qnli": ("question", "sentence", [("Who won ?", "Ann won the race .", 0)]),
    "rte": ("sentence1", "sentence2", [("It rains .", "It is dry .", 1)]),
    "mrpc": ("sentence1", "sentence2", [("He left .", "He went away .", 1),
                                       ("He left .", "She stayed .", 0)]),
    "qqp": ("question1", "question2", [("How old ?", "What age ?", 1)]),
}


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
    """`data_dir/glue/CONFIG/VERSION` written by the real `glue` builder class with its
    generator swapped for a few local examples: `tfds.builder("glue/mrpc", data_dir=...)`
    then finds the prepared files and never downloads."""
    data_dir = str(tmp_path_factory.mktemp("tfds_glue"))
    glue = type(tfds.builder("glue/mrpc"))

    class LocalGlue(glue, skip_registration=True):
        name = "glue"

        def _split_generators(self, dl_manager):
            return {"train": self._local(), "validation": self._local()}

        def _local(self):
            first, second, rows = GLUE_PAIRS[self.builder_config.name]
            for i, (a, b, label) in enumerate(rows):
                yield i, {first: a, second: b, "label": label, "idx": i}

    for config in GLUE_PAIRS:
        LocalGlue(config=config, data_dir=data_dir).download_and_prepare()
    return data_dir


@pytest.mark.parametrize("config", sorted(GLUE_PAIRS))
def test_tfds_glue_pair_datasets(glue_dir, config):
    first, second, rows = GLUE_PAIRS[config]
    name = f"glue/{config}"
    texts, labels, names = readers.tfds_classification(name, "validation", glue_dir)
    assert sorted(zip(texts, labels)) == sorted(((a, b), label) for a, b, label in rows)
    assert names == list(tfds.builder(name).info.features["label"].names)
    assert readers.tfds_text_keys(name, glue_dir) == (first, second)


def test_tfds_pair_run_records_its_features_and_sentiment_refuses_pairs(glue_dir):
    e = FinetuneExperiment(task="classify")
    e.data.tfds, e.data.tfds_data_dir = "glue/mrpc", glue_dir
    train, valid, labels = load_train_valid(e)
    assert (e.data.text_column, e.data.text_pair_column) == ("sentence1", "sentence2")
    assert labels == ["not_equivalent", "equivalent"]
    assert sorted(zip(train.texts, train.text_pairs)) == [("He left .", "He went away ."),
                                                          ("He left .", "She stayed .")]
    e.task = "sentiment"
    e.data.text_pair_column = None
    with pytest.raises(ValueError, match="glue/mrpc:train holds sentence pairs: fine-tune "
                                         "them with tfmask finetune classify, not sentiment"):
        load_split(e, "train", tfds_split=True)


# --- the pipeline -----------------------------------------------------------------------------

def test_pair_batches_lay_out_cls_a_sep_b_sep_and_cut_longest_first():
    tokenizer = tiny_tokenizer()
    v = {t: i for i, t in enumerate(tokenizer.vocab)}
    texts = ["the cat sat on the mat", "the dog", "hello"]
    pairs = ["a big dog", "the cat sat on the mat", "world"]
    ds = finetuning_data.classification_dataset(texts, [0, 1, 2], tokenizer, 8, batch_size=3,
                                                text_pairs=pairs)
    x, y, weight = next(iter(ds))
    # budget 8 - 3 = 5 pieces; longest first: (6, 3) pieces keep (3, 2), (2, 6) keep (2, 3)
    expected = [["[CLS]", "the", "cat", "sat", "[SEP]", "a", "big", "[SEP]"],
                ["[CLS]", "the", "dog", "[SEP]", "the", "cat", "sat", "[SEP]"],
                ["[CLS]", "hello", "[SEP]", "world", "[SEP]", "[PAD]", "[PAD]", "[PAD]"]]
    assert x["token_ids"].numpy().tolist() == [[v[t] for t in row] for row in expected]
    assert x["segment_ids"].numpy().tolist() == [[0, 0, 0, 0, 0, 1, 1, 1],
                                                 [0, 0, 0, 0, 1, 1, 1, 1],
                                                 [0, 0, 0, 1, 1, 0, 0, 0]]
    assert x["padding_mask"].numpy().sum(1).tolist() == [8, 8, 5]
    keep = longest_first(tf.constant([6, 2, 1]), tf.constant([3, 6, 1]), 5)
    assert [k.numpy().tolist() for k in keep] == [[3, 2, 1], [2, 3, 1]]
    assert y.numpy().tolist() == [0, 1, 2] and weight.numpy().tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="3 texts but 2 text_pairs"):
        finetuning_data.classification_dataset(texts, [0, 1, 2], tokenizer, 8, 3,
                                               text_pairs=pairs[:2])


def test_binary_scores_add_glue_positive_class_f1():
    # class 1: tp 2, fp 1, fn 1 -> F1 2*2 / (2*2 + 1 + 1) = 2/3
    scores = classification_scores([1, 1, 1, 0, 0], [1, 1, 0, 1, 0],
                                   ["not_equivalent", "equivalent"])
    assert scores["positive_f1"] == pytest.approx(2 / 3, abs=1e-15)
    assert scores["positive_f1"] == scores["per_class"]["equivalent"]["f1"]
    assert "positive_f1" not in classification_scores([0, 1, 2], [0, 1, 2], ["a", "b", "c"])


# --- a tiny classify run ----------------------------------------------------------------------

def test_pair_run_records_its_columns_and_scores_every_dev_pair(pair_run, data_dir):
    run, best, _ = pair_run
    config = runs.read_config(run)
    assert config["task"] == "classify"
    assert (config["data"]["text_column"], config["data"]["text_pair_column"]) == (
        "premise", "hypothesis")
    assert runs.load_labels(run) == ["contradiction", "entailment", "neutral"]
    assert best["examples"] == 400 and len(best["confusion_matrix"]) == 3
    assert sum(map(sum, best["confusion_matrix"])) == 400


@pytest.fixture(scope="module")
def pair_export(pair_run, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("pair_models"))
    return export.export(pair_run[0], "pairs", base)


def test_serve_text_takes_text_and_text_pair_and_matches_evaluate(pair_run, pair_export,
                                                                   data_dir):
    run, _, experiment = pair_run
    loaded = tf.saved_model.load(pair_export["text"]["path"])
    signature = loaded.signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["text", "text_pair"]
    exp, model, tokenizer = runs.load_finetuned(run)
    examples, _ = load_split(exp, data_dir["pairs_dev"], labels=exp.labels)
    texts, pairs = examples.texts[:40], examples.text_pairs[:40]
    served = signature(text=tf.constant(texts), text_pair=tf.constant(pairs))
    ds = finetuning_data.classification_dataset(texts, examples.label_ids[:40], tokenizer,
                                                exp.data.max_sequence_length, 40,
                                                text_pairs=pairs)
    x, _, _ = next(iter(ds))
    expected = tf.nn.softmax(model(x, training=False)).numpy()
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    evaluator = Evaluator("classify", examples, exp.labels, tokenizer,
                          exp.data.max_sequence_length)
    predicted, _ = evaluator.predict(model)
    assert served["label_id"].numpy().tolist() == predicted[:40]
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of strings"):
        signature(text=tf.constant(["a", "b"]), text_pair=tf.constant(["c"]))
    extra = os.path.join(pair_export["text"]["path"], "assets.extra")
    assert json.load(open(os.path.join(extra, "op_audit.json")))["kind"] == "classify"
    # TF Serving replays the warm-up request at load: it must feed both inputs.
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    [record] = tf.data.TFRecordDataset(os.path.join(extra, "tf_serving_warmup_requests")
                                       ).as_numpy_iterator()
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    assert sorted(request.inputs) == ["text", "text_pair"]
    out = signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
    assert out["label"].shape == (2,)


def test_predict_reads_a_tab_between_the_two_texts(pair_export, capsys, tmp_path):
    path = pair_export["text"]["path"]
    assert cli.main(["predict", path, "Ann was born here .\tShe was born here ."]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert (record["text"], record["text_pair"]) == ("Ann was born here .",
                                                    "She was born here .")
    assert set(record["probabilities"]) == {"contradiction", "entailment", "neutral"}
    assert cli.main(["predict", "--rest", path, "a\tb", "c\td"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 2
    assert cli.main(["predict", path, "no tab here"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "text 1 ('no tab here') has no tab" in err
    assert predict.split_pairs(["a\tb\tc"]) == [("a", "b\tc")]


def test_pair_flags_are_checked_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["finetune", "sentiment", "--text-pair-column", "x", "--out",
                  str(tmp_path / "r")])
    assert "unrecognized arguments: --text-pair-column" in capsys.readouterr().err
    assert cli.main(["finetune", "classify", "--set", "data.text_pair_column=h", "--set",
                     "data.text_column=p", "--recipe", "nonexistent.py", "--out",
                     str(tmp_path / "r")]) == 2
    assert "--recipe 'nonexistent.py': no such file" in capsys.readouterr().err
    e = FinetuneExperiment(task="sentiment")
    e.data.text_pair_column = "hypothesis"
    with pytest.raises(ValueError, match="--text-pair-column is for sentence pairs: tfmask "
                                         "finetune classify, not sentiment"):
        e.validate()
    assert not os.path.exists(tmp_path / "r")
