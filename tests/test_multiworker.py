"""Training across workers (`--strategy multi_worker`) and with the static shapes a TPU needs.

The cluster tests start two `tfmask` worker processes on localhost ports, each with its own
`TF_CONFIG` (`MultiWorkerMirroredStrategy` must be created before a process runs any other
TensorFlow op, so each worker is a process of its own; on CPU the collectives use RING). The
pretraining corpus has two files, so each worker reads its own. One fixture runs the cluster:

1. both workers pretrain `bert_tiny`; once the chief has written its first checkpoint, the
   chief is killed, and worker 1 stops with an error (its collectives lose their peer);
2. the workers run again: first a pretraining command whose configuration differs from the
   run directory's (the chief refuses it, and worker 1 stops with the chief's message), then
   the same command as before, which resumes at the chief's last checkpoint and finishes, then
   both fine-tune a NER head from it.

A worker's files other than the chief's are thrown away, so each worker also saves its weights
after every `fit` (a wrapper around `keras.Model.fit` in the worker program) for the tests to
compare. The references are single-process runs in this process, on the same global batches.
"""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_tokenizer, write_corpus
from tfmask import cli, demo, runs
from tfmask.config import DataConfig, Experiment, MaskingConfig
from tfmask.model.encoder import BertEncoder
from tfmask.model.heads import MaskedLM
from tfmask.text import pretraining_data
from tfmask.train.optimizer import build_optimizer, compile_model

STEPS, SAVE_EVERY, BATCH = 6, 2, 8
#: Every random part is seeded and dropout is off, so the workers and the single-process
#: references can agree to float rounding.
PRETRAIN = ["--steps", str(STEPS), "--save-every", str(SAVE_EVERY), "--batch-size", str(BATCH),
            "--seq-len", "16", "--max-predictions", "4", "--vocab-size", "100",
            "--eval-steps", "1", "--set", "encoder.dropout=0"]
FINETUNE = ["--epochs", "1", "--batch-size", "8", "--seq-len", "32", "--learning-rate", "1e-3",
            "--dropout", "0", "--encoder-dropout", "0"]

#: A worker: runs `tfmask` commands in one process (one strategy serves them all), saves its
#: weights after every `fit`, as `SPY/worker{index}-fit{n}.npz`, and the commands' exit
#: statuses in `SPY/worker{index}-statuses.json`.
WORKER = r"""
import json, os, sys
import keras, numpy as np
from tfmask import cli

index, spy, commands = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
fit, fits = keras.Model.fit, []

def recorded_fit(model, *args, **kwargs):
    history = fit(model, *args, **kwargs)
    np.savez(os.path.join(spy, f"worker{index}-fit{len(fits)}.npz"), *model.get_weights())
    fits.append(history)
    return history

keras.Model.fit = recorded_fit
statuses = []
for command in commands:
    statuses.append(cli.main(command))
    with open(os.path.join(spy, f"worker{index}-statuses.json"), "w") as fh:
        json.dump(statuses, fh)
sys.exit(statuses[-1])
"""


def _free_ports(count: int) -> list[int]:
    """Ports free right now, outside the kernel's range for outgoing connections (32768+),
    so that no client socket takes one before the workers bind it."""
    ports = []
    while len(ports) < count:
        port = random.randint(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("localhost", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def _log(path: str) -> str:
    with open(path, errors="replace") as fh:
        return fh.read()


class Cluster:
    """Two worker processes running `commands`, logs in `root/<tag>-worker{i}.log`."""

    def __init__(self, root: str, tag: str, commands: list[list[str]]):
        self.root, self.tag, self.commands = root, tag, commands
        self.spy = os.path.join(root, f"{tag}-spy")
        self.tmp = [os.path.join(root, f"{tag}-tmp{i}") for i in range(2)]
        for folder in [self.spy] + self.tmp:
            os.makedirs(folder, exist_ok=True)
        self.logs = [os.path.join(root, f"{tag}-worker{i}.log") for i in range(2)]
        for attempt in range(3):
            self._start()
            if self._formed():
                return
            # A port taken between choosing it and binding it: choose others.
            self.stop()
        raise AssertionError("the workers never formed a cluster:\n" + self.output())

    def _start(self):
        ports = _free_ports(2)
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        self.procs = []
        for i in range(2):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=self.tmp[i],
                       TF_CONFIG=json.dumps({"cluster": cluster,
                                             "task": {"type": "worker", "index": i}}))
            with open(self.logs[i], "w") as log:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(i), self.spy, json.dumps(self.commands)],
                    env=env, stdout=log, stderr=subprocess.STDOUT))

    def _formed(self, timeout: float = 300) -> bool:
        """Whether both workers said which worker they are (the strategy was created: the
        cluster formed); False if one could not start its server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("of 2 workers" in _log(log) for log in self.logs):
                return True
            if any(p.poll() is not None for p in self.procs):
                if any("Could not start gRPC server" in _log(log) for log in self.logs):
                    return False
                raise AssertionError("a worker stopped before the cluster formed:\n"
                                     + self.output())
            time.sleep(0.05)
        raise AssertionError("the cluster did not form in time:\n" + self.output())

    def wait(self, timeout: float = 600) -> list[int]:
        deadline = time.monotonic() + timeout
        try:
            return [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in self.procs]
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("the workers did not finish in time:\n" + self.output())

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()

    def output(self) -> str:
        return "\n".join(f"--- {log}\n{_log(log)[-4000:]}" for log in self.logs)


def _checkpoint_epoch(run: str) -> int:
    """The epoch of the chief's last checkpoint (0: none yet)."""
    path = os.path.join(run, "checkpoints", "training_metadata.json")
    try:
        with open(path) as fh:
            return int(json.load(fh)["epoch"])
    except (OSError, ValueError, KeyError):  # not there yet, or being replaced
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("cluster"))
    corpus = [write_corpus(os.path.join(root, f"corpus{i}"), num_lines=300, seed=i)
              for i in range(2)]
    ner_train, ner_valid = (os.path.join(root, f"ner_{split}.txt") for split in ("train", "valid"))
    demo.write_conll(ner_train, demo.ner_sentences(0, 40))
    demo.write_conll(ner_valid, demo.ner_sentences(1, 30))
    out = os.path.join(root, "out")
    pretrain_run, ner_run = os.path.join(out, "pretrain"), os.path.join(out, "ner")
    pretrain = ["pretrain", "--strategy", "multi_worker", "--out", pretrain_run,
                "--corpus", *corpus, *PRETRAIN]
    finetune = ["finetune", "ner", "--strategy", "multi_worker", "--out", ner_run,
                "--init", pretrain_run, "--train", ner_train, "--valid", ner_valid, *FINETUNE]

    # 1. Kill the chief once it has checkpointed an interval; worker 1 then stops.
    start = time.monotonic()
    first = Cluster(root, "first", [pretrain])
    timeline = {"formed": time.monotonic() - start}
    while _checkpoint_epoch(pretrain_run) < 1:
        if any(p.poll() is not None for p in first.procs):
            raise AssertionError("a worker stopped before the first checkpoint:\n"
                                 + first.output())
        time.sleep(0.02)
    first.procs[0].send_signal(signal.SIGKILL)
    timeline["killed"] = time.monotonic() - start
    first_status = first.wait(timeout=120)
    timeline["worker 1 stopped"] = time.monotonic() - start
    resumed_epoch = _checkpoint_epoch(pretrain_run)

    # 2. A command the chief refuses, the same commands again, then fine-tuning.
    conflicting = pretrain + ["--steps", str(STEPS + 2)]  # the last --steps counts
    second = Cluster(root, "second", [conflicting, pretrain, finetune])
    timeline["formed again"] = time.monotonic() - start
    second_status = second.wait()
    assert second_status == [0, 0], second.output()
    statuses = [runs.read_json(os.path.join(second.spy, f"worker{i}-statuses.json"))
                for i in range(2)]
    timeline["done"] = time.monotonic() - start
    print("cluster timeline (s):", {k: round(v, 1) for k, v in timeline.items()})
    return dict(root=root, out=out, corpus=corpus, ner_train=ner_train, ner_valid=ner_valid,
                pretrain_run=pretrain_run, ner_run=ner_run, first=first, second=second,
                first_status=first_status, resumed_epoch=resumed_epoch, statuses=statuses)


def test_a_killed_cluster_resumes_at_the_last_checkpoint(cluster):
    first, second = cluster["first"], cluster["second"]
    assert cluster["first_status"][0] == -signal.SIGKILL
    assert cluster["first_status"][1] == 2, first.output()  # stopped, did not hang
    assert "tfmask pretrain: error:" in _log(first.logs[1])
    step = cluster["resumed_epoch"] * SAVE_EVERY
    assert 0 < step < STEPS
    for log in second.logs:
        assert f"from step {step} of {STEPS}." in _log(log), second.output()
    history = runs.read_json(os.path.join(cluster["pretrain_run"], "history.json"))
    assert [r["step"] for r in history] == list(range(SAVE_EVERY, STEPS + 1, SAVE_EVERY))


def test_an_error_on_the_chief_stops_every_worker(cluster):
    """The chief refuses a configuration that differs from its run directory's; worker 1,
    waiting for the chief's preparation, stops with the chief's message instead of hanging,
    and the cluster goes on with the next command."""
    assert cluster["statuses"] == [[2, 0, 0], [2, 0, 0]]
    chief, worker = (_log(log) for log in cluster["second"].logs)
    refusal = "holds a run with a different configuration (train.steps: 6 -> 8)"
    assert f"tfmask pretrain: error: {cluster['pretrain_run']} {refusal}" in chief
    assert "tfmask pretrain: error: worker 1: the chief stopped: " in worker
    assert refusal in worker


def _encoder_weights(run: str, name: str = "encoder.keras") -> list[np.ndarray]:
    return keras.saving.load_model(os.path.join(run, name), compile=False).get_weights()


def _assert_same(actual, expected, atol: float, what: str):
    assert len(actual) == len(expected), what
    worst = max(float(np.abs(a - e).max()) for a, e in zip(actual, expected))
    assert worst <= atol, f"{what}: weights differ by up to {worst}"


def _spied(cluster, worker: int) -> list[list[np.ndarray]]:
    files = sorted(glob.glob(os.path.join(cluster["second"].spy, f"worker{worker}-fit*.npz")))
    return [[z[k] for k in sorted(z.files, key=lambda k: int(k.split("_")[1]))]
            for z in map(np.load, files)]


def _reference_pretraining(cluster) -> list[np.ndarray]:
    """One process, one device, on the global batches the two workers made together: each
    worker's pipeline (its own corpus file, its mask seeds) gives half of every batch."""
    run = cluster["pretrain_run"]
    e = Experiment.load(os.path.join(run, "config.json"))
    t, tokenizer = e.train, runs.load_tokenizer(run)
    # Seeded first, as `pretrain` does: the pipelines' shuffles depend on the global seed.
    keras.utils.set_random_seed(t.seed)
    halves = [pretraining_data.pretraining_dataset(
        tokenizer, e.data, e.masking, batch_size=t.batch_size, seed=t.seed, training=True,
        input_context=tf.distribute.InputContext(2, worker, 2)) for worker in range(2)]
    batches = tf.data.Dataset.zip(tuple(halves)).map(
        lambda a, b: tf.nest.map_structure(lambda u, v: tf.concat([u, v], 0), a, b))
    model = MaskedLM(BertEncoder.from_encoder_config(e.encoder))
    compile_model(model, build_optimizer(t.learning_rate, t.steps, t.warmup_steps,
                                         t.weight_decay, t.clipnorm, t.adam_epsilon),
                  "masked_accuracy")
    model.fit(batches, steps_per_epoch=t.save_every, epochs=t.steps // t.save_every, verbose=0)
    return model.encoder.get_weights()


def test_two_workers_train_as_one_process(cluster, tmp_path):
    """Both workers end with the same weights, equal to one process's on the same global
    batches: pretraining (each worker reads its own file; the mask weights are normalised
    over the global batch, across workers) and fine-tuning (every worker builds the global
    batches and keeps its slice; the last one is smaller and split unevenly)."""
    workers = [_spied(cluster, 0), _spied(cluster, 1)]
    assert len(workers[0]) == len(workers[1]) == 2  # the resumed pretraining, the fine-tuning
    for fit, (first, second) in enumerate(zip(*workers)):
        _assert_same(second, first, 0.0, f"fit {fit}: worker 1 against worker 0")

    _assert_same(_encoder_weights(cluster["pretrain_run"]), _reference_pretraining(cluster),
                 1e-5, "pretrained encoder against one process")

    reference = str(tmp_path / "ner")
    assert cli.main(["finetune", "ner", "--strategy", "default", "--out", reference, "--init",
                     cluster["pretrain_run"], "--train", cluster["ner_train"], "--valid",
                     cluster["ner_valid"], *FINETUNE]) == 0
    _assert_same(_encoder_weights(cluster["ner_run"], "model.keras"),
                 _encoder_weights(reference, "model.keras"), 1e-5,
                 "fine-tuned model against one process")
    ours, theirs = (runs.read_json(os.path.join(run, "history.json"))
                    for run in (cluster["ner_run"], reference))
    assert [r["val_f1"] for r in ours] == pytest.approx([r["val_f1"] for r in theirs])


def test_only_the_chief_writes(cluster):
    """The chief's run directories are complete; nothing else was written: the out folder
    holds the two runs, and the other worker's temporary folders are gone."""
    assert sorted(os.listdir(cluster["out"])) == ["ner", "pretrain"]
    assert runs.is_finished(cluster["pretrain_run"], "pretrain")
    assert runs.is_finished(cluster["ner_run"], "finetune")
    pretrain = set(os.listdir(cluster["pretrain_run"]))
    assert {"config.json", "vocab.txt", "encoder.keras", "masked_lm.keras", "history.json",
            "history.png", "tensorboard"} <= pretrain
    assert "checkpoints" not in pretrain  # removed when the run finished
    assert {"config.json", "vocab.txt", "labels.txt", "model.keras", "best.weights.h5",
            "metrics.json", "history.json", "history.png", "tensorboard"} <= set(
        os.listdir(cluster["ner_run"]))
    second = cluster["second"]
    worker_log = _log(second.logs[1])
    folders = [line.split("temporary folder, ")[1].split(" ")[0]
               for line in worker_log.splitlines() if "temporary folder, " in line]
    assert len(folders) == 3  # the refused command's, pretraining's, fine-tuning's
    assert all(folder.startswith(second.tmp[1]) for folder in folders)
    assert not any(os.path.exists(folder) for folder in folders)
    assert not [name for tmp in second.tmp for name in os.listdir(tmp)
                if name.startswith("tfmask-")]


# ----------------------------------------------------------------------------------------------
# Input pipelines across workers (in this process)
# ----------------------------------------------------------------------------------------------
def _batches(ds, count: int):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(count)]


def test_fewer_files_than_workers_split_each_global_batch(tmp_path):
    """One file, two workers with two replicas each: every replica gets B / 4 consecutive
    rows of the global batch one process builds, masks and seeds included."""
    corpus = write_corpus(str(tmp_path), num_lines=200)
    data = DataConfig(corpus=[corpus], max_sequence_length=16, eval_holdout=0.0)
    masking = MaskingConfig(max_predictions=4)
    kwargs = dict(tokenizer=tiny_tokenizer(), data=data, masking=masking, batch_size=BATCH,
                  seed=3, training=True, start_step=2)
    whole = _batches(pretraining_data.pretraining_dataset(**kwargs), 2)
    per_replica = [_batches(pretraining_data.pretraining_dataset(
        **kwargs, input_context=tf.distribute.InputContext(2, worker, 4)), 4)
        for worker in range(2)]
    for step, batch in enumerate(whole):
        # Replica order: worker 0's two replicas, then worker 1's.
        parts = [per_replica[w][2 * step + r] for w in range(2) for r in range(2)]
        assert all(p[1].shape[0] == BATCH // 4 for p in parts)
        joined = tf.nest.map_structure(lambda *a: np.concatenate(a), *parts)
        tf.nest.map_structure(np.testing.assert_array_equal, joined, batch)
    assert whole[0][2].max() == 1.0  # mask weights as they are: the loss normalises them


def test_workers_with_files_of_their_own_mask_with_their_own_seeds(tmp_path):
    """Two identical files, one a worker: each batches B / 2 of its own sequences and masks
    them with seeds of its own, so the two halves of a global batch are not copies."""
    text = open(write_corpus(str(tmp_path / "a"), num_lines=200)).read()
    files = [tmp_path / f"part{i}.txt" for i in range(2)]
    for f in files:
        f.write_text(text)
    data = DataConfig(corpus=[str(f) for f in files], max_sequence_length=16, eval_holdout=0.0)
    halves = [_batches(pretraining_data.pretraining_dataset(
        tiny_tokenizer(), data, MaskingConfig(max_predictions=4), batch_size=BATCH, seed=0,
        input_context=tf.distribute.InputContext(2, worker, 2)), 3) for worker in range(2)]
    for a, b in zip(*halves):
        assert a[1].shape[0] == b[1].shape[0] == BATCH // 2
        np.testing.assert_array_equal(a[0]["padding_mask"], b[0]["padding_mask"])  # same text
    assert any(not np.array_equal(a[0]["mask_positions"], b[0]["mask_positions"])
               for a, b in zip(*halves))


def test_a_tfds_split_with_fewer_shards_than_workers_is_split_by_batch(tmp_path):
    """A TFDS source counts its files like a corpus: one shard, two workers, so each keeps
    its half of every global batch (here worker 1's: the second half)."""
    from test_data import TfmaskTinyText

    data_dir = str(tmp_path / "tfds")
    TfmaskTinyText(data_dir=data_dir).download_and_prepare()
    assert pretraining_data.tfds_file_count("tfmask_tiny_text:train", data_dir) == 1
    data = DataConfig(tfds="tfmask_tiny_text:train", tfds_data_dir=data_dir, eval_holdout=0.0,
                      max_sequence_length=16, shuffle_buffer=20)
    kwargs = dict(tokenizer=tiny_tokenizer(), data=data, masking=MaskingConfig(max_predictions=4),
                  batch_size=BATCH, seed=1)
    whole = _batches(pretraining_data.pretraining_dataset(**kwargs), 1)[0]
    half = _batches(pretraining_data.pretraining_dataset(
        **kwargs, input_context=tf.distribute.InputContext(2, 1, 2)), 1)[0]
    tf.nest.map_structure(lambda h, w: np.testing.assert_array_equal(h, w[BATCH // 2:]),
                          half, whole)


def test_batch_size_must_split_evenly_over_replicas(tmp_path):
    corpus = write_corpus(str(tmp_path), num_lines=20)
    with pytest.raises(ValueError, match="--batch-size 6 must be a multiple of the 4 replicas"):
        pretraining_data.pretraining_dataset(
            tiny_tokenizer(), DataConfig(corpus=[corpus], max_sequence_length=16),
            MaskingConfig(max_predictions=4), batch_size=6,
            input_context=tf.distribute.InputContext(2, 0, 4))


# ----------------------------------------------------------------------------------------------
# TPU: one shape for every batch, an XLA-compiled step (checked on CPU)
# ----------------------------------------------------------------------------------------------
def _fully_defined(spec) -> bool:
    return all(s.shape.is_fully_defined() for s in tf.nest.flatten(spec))


def test_static_shapes_and_a_jit_compiled_step(tmp_path, data_dir):
    """What `--strategy tpu` trains on: pretraining batches (training and evaluation) and
    fine-tuning batches (NER, sentiment) padded to one shape; and the pretraining step, XLA
    compiled (`jit_compile=True`, as `pretrain` and `finetune` set it on a TPU), runs on
    them. A TPU itself is not available here."""
    from tfmask.text.examples import load_train_valid
    from tfmask.train import finetuning
    from helpers import finetune_experiment

    corpus = write_corpus(str(tmp_path), num_lines=200)
    data = DataConfig(corpus=[corpus], max_sequence_length=16, eval_holdout=0.2)
    masking = MaskingConfig(max_predictions=4)
    train = pretraining_data.pretraining_dataset(tiny_tokenizer(), data, masking,
                                                 batch_size=BATCH, training=True)
    evaluation = pretraining_data.pretraining_dataset(tiny_tokenizer(), data, masking,
                                                      batch_size=BATCH, training=False,
                                                      eval_split=True)
    assert _fully_defined(train.element_spec) and _fully_defined(evaluation.element_spec)
    assert [b[1].shape[0] for b in evaluation] == [BATCH] * len(list(evaluation))

    keras.utils.set_random_seed(0)
    encoder = BertEncoder(vocabulary_size=tiny_tokenizer().vocabulary_size, num_layers=1,
                          num_heads=2, hidden_dim=16, intermediate_dim=32,
                          max_sequence_length=32)
    model = MaskedLM(encoder)
    compile_model(model, build_optimizer(1e-3, total_steps=4), "masked_accuracy",
                  jit_compile=True)
    assert model.jit_compile
    history = model.fit(train, steps_per_epoch=1, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])

    for task, train_file, valid_file in (("ner", "ner_train", "ner_valid"),
                                         ("sentiment", "sentiment_train", "sentiment_dev")):
        e = finetune_experiment(task, data_dir[train_file], data_dir[valid_file],
                                batch_size=8)
        e.data.max_train_examples, e.data.max_sequence_length = 30, 32
        e.data.length_buckets = [16]  # ignored: one shape
        examples, _, _ = load_train_valid(e)
        ds = finetuning._train_dataset(e, examples, tiny_tokenizer(), static_shapes=True)
        assert _fully_defined(ds.element_spec), (task, ds.element_spec)
        assert ds.element_spec[0]["token_ids"].shape == (e.train.batch_size, 32)
        if task == "sentiment":  # a smaller last batch is dropped (NER: windows, uncounted)
            assert int(ds.cardinality()) == len(examples) // e.train.batch_size
