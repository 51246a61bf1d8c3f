"""Bad inputs, damaged files and interruptions: every one ends in a one-line error that names
the file (and line) or the flag, or in correct behaviour, with nothing lost.

- bad flags, corpus files, vocabularies and recipes are answered before TensorFlow loads;
- checkpoints: a damaged newest one falls back to the previous, with none left the damaged
  file is named; writes are atomic;
- kill -9 during fine-tuning and during export, then the same command: it resumes or redoes
  the export, nothing left behind (pretraining's kill test is in test_cli.py);
- a full disk during export; a NaN loss; untrusted files (torch pickles, Keras Lambda layers,
  export names that leave the base folder); damaged checkpoints given to `tfmask import`.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import google_bert_tensors, hf_state_dict, write_corpus, write_hf_folder
from tfmask import cli, runs
from tfmask.text import text_files
from tfmask.train import checkpoints

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: local files never reach the network."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _main(argv, capsys) -> tuple[int, str]:
    """`tfmask ARGV` in this process: (exit status, stderr), stderr checked to be one line."""
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return code, err


# ----------------------------------------------------------------------------------------------
# Bad inputs, answered before TensorFlow loads
# ----------------------------------------------------------------------------------------------
_CHECK_SCRIPT = """
import contextlib, io, json, sys
from tfmask import cli
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(argv)
    out.append({"code": code, "err": err.getvalue(),
                "tensorflow": "tensorflow" in sys.modules})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    good = open(write_corpus(str(root / "good"), num_lines=40)).read()
    files = {"root": str(root)}

    def put(name, data: bytes):
        (root / name).write_bytes(data)
        files[name.split(".")[0]] = str(root / name)

    put("empty.txt", b"")
    put("blank.txt", b"\n  \n\t\n\x00\x01\n" * 20)
    os.makedirs(root / "mixed")
    (root / "mixed" / "a.txt").write_text(good)
    (root / "mixed" / "b.txt").write_bytes(b"one line\ntwo line\n" + "café\n".encode("latin-1"))
    files["mixed"] = str(root / "mixed" / "*.txt")
    put("utf16.txt", good.encode("utf-16"))
    put("long.txt", b"short line\n" * 3 + b"x" * (text_files.MAX_LINE_BYTES + 10) + b"\nend\n")
    put("vocab_latin1.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncafé\n".encode("latin-1"))
    put("vocab_plain.txt", b"a\nb\n")
    put("recipe_syntax.py", b"def config(:\n    pass\n")
    put("recipe_raises.py", b"import os\n\ndef config():\n    raise RuntimeError('boom')\n")
    put("recipe_dict.py", b"def config():\n    return {'train': {}}\n")
    os.makedirs(root / "run")
    files["run"] = str(root / "run")
    return files


#: (argv, what the one line says); {name} are `bad_files`.
CHECKED = [
    (["pretrain", "--corpus", "{empty}"],
     "--corpus '{empty}': no text in its 1 file (0 lines, 0 bytes"),
    (["pretrain", "--corpus", "{blank}"], "no text in its 1 file (80 lines"),
    (["pretrain", "--corpus", "{mixed}"],
     "b.txt:3: not UTF-8 (byte 0xe9 at byte offset 21 of the file, column 4 of the line); "
     "save it as UTF-8"),
    (["pretrain", "--corpus", "{utf16}"], "utf16.txt:1: not UTF-8 (byte 0xff at byte offset 0"
                                          " of the file, column 1 of the line); it is UTF-16 "
                                          "(it starts with a UTF-16 byte-order mark)"),
    (["pretrain", "--corpus", "{long}"], "long.txt:4: a line of 1,048,586 bytes (over "
                                         "1,048,576)"),
    (["pretrain", "--eval-corpus", "{empty}"], "--eval-corpus '{empty}': no text"),
    (["pretrain", "--vocab", "{vocab_latin1}"], "--vocab {vocab_latin1}:6: not UTF-8"),
    (["pretrain", "--vocab", "{vocab_plain}"], "--vocab {vocab_plain}: not a BERT vocabulary"),
    (["pretrain", "--recipe", "{recipe_syntax}"],
     "--recipe {recipe_syntax}:1: SyntaxError: invalid syntax"),
    (["pretrain", "--recipe", "{recipe_raises}"],
     "--recipe {recipe_raises}:4: RuntimeError: boom"),
    (["pretrain", "--recipe", "{recipe_dict}"],
     "config() returned dict, not a tfmask.config.Experiment"),
    (["finetune", "ner", "--recipe", "{recipe_dict}"], "not a tfmask.config.FinetuneExperiment"),
    (["pretrain", "--learning-rate", "inf"], "--learning-rate must be a finite number, got inf"),
    (["finetune", "ner", "--weight-decay", "nan"], "--weight-decay must be a finite number"),
    (["pretrain", "--vocab-size", "3"], "--vocab-size must be > 5"),
    (["pretrain", "--set", "data.skip_bad_lines=maybe"], "expected a boolean, got 'maybe'"),
    (["finetune", "sentiment", "--set", "data.length_buckets=16,0"],
     "data.length_buckets must hold lengths >= 1, got 0"),
    (["export", "{run}", "--name", "../escape"], "--name '../escape': give a plain folder name"),
    (["export", "{run}", "--name", "/tmp/abs"], "--name '/tmp/abs': give a plain folder name"),
    (["export", "{run}", "--name", ".hidden"], "give a plain folder name"),
    (["export", "{run}", "--name", "x", "--base-dir", "{empty}"],
     "--base-dir {empty}: not a directory"),
]


@pytest.fixture(scope="module")
def checked(bad_files):
    """Every `CHECKED` case in one fresh interpreter (so it can tell whether TensorFlow was
    loaded): exit status, stderr."""
    out = os.path.join(bad_files["root"], "new", "run")
    cases = []
    for argv, _ in CHECKED:
        argv = [a.format(**bad_files) for a in argv]
        if argv[0] in ("pretrain", "finetune"):
            argv += ["--out", out]
        cases.append(argv)
    result = subprocess.run([sys.executable, "-c", _CHECK_SCRIPT, json.dumps(cases)],
                            capture_output=True, text=True, cwd=REPO, timeout=120,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    assert not os.path.exists(os.path.dirname(out))  # nothing was written
    return json.loads(result.stdout)


@pytest.mark.parametrize("index", range(len(CHECKED)),
                         ids=[" ".join(a[:3]) for a, _ in CHECKED])
def test_bad_inputs_answer_in_one_line_before_tensorflow_loads(index, checked, bad_files):
    result = checked[index]
    assert result["code"] == 2, result
    assert len(result["err"].strip().splitlines()) == 1, result["err"]
    assert CHECKED[index][1].format(**bad_files) in result["err"]
    assert not result["tensorflow"], "TensorFlow was loaded before the answer"


def test_corpus_scan_streams_and_skips_what_the_pipeline_skips(bad_files, tmp_path, capsys):
    """--skip-bad-lines: the scan counts the lines the tf.data filter leaves out, and only
    those; an absurd line is read past, never held whole."""
    from tfmask.text.pretraining_data import good_lines

    files = sorted(glob.glob(bad_files["mixed"])) + [bad_files["long"]]
    report = text_files.scan_corpus(files, skip_bad_lines=True)
    assert (report.skipped_not_utf8, report.skipped_long) == (1, 1)
    assert report.first_not_utf8.endswith("b.txt:3") and report.first_long.endswith("long.txt:4")
    assert "skipped 1 not UTF-8 (first: " in report.skipped_summary("--corpus")
    lines = tf.data.TextLineDataset(files)
    kept = sum(1 for _ in good_lines(lines))
    assert kept == sum(1 for _ in lines) - 2
    # The CLI prints the count, and trains.
    from tfmask.config import DataConfig

    text_files.check_corpus(DataConfig(corpus=files, skip_bad_lines=True))
    assert "--corpus: skipped 1 not UTF-8" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------
def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


class _KeepWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch + 1] = [w.copy() for w in self.model.get_weights()]


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, capsys):
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 3), "float32")
    backup = str(tmp_path / "checkpoints")
    model, kept = _tiny_model(), _KeepWeights()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[
        kept, checkpoints.Checkpoints(backup, delete_checkpoint=False)])
    assert sorted(os.listdir(backup)) == ["epoch-000002.weights.h5", "epoch-000003.weights.h5",
                                          "training_metadata.json"]  # the last two
    metadata = json.load(open(os.path.join(backup, "training_metadata.json")))
    assert metadata["epoch"] == 3 and [c["epoch"] for c in metadata["checkpoints"]] == [3, 2]

    newest = os.path.join(backup, "epoch-000003.weights.h5")
    with open(newest, "r+b") as fh:  # a kill or a full disk during its write
        fh.truncate(os.path.getsize(newest) // 2)
    from tfmask.train.callbacks import resumed_epoch

    assert resumed_epoch(backup) == 2
    warning = capsys.readouterr().out
    assert f"{newest} (epoch 3) is damaged (truncated:" in warning
    assert "resuming from " + os.path.join(backup, "epoch-000002.weights.h5") in warning
    restored = _tiny_model(seed=1)
    callback = checkpoints.Checkpoints(backup, delete_checkpoint=False)
    callback.set_model(restored)
    callback.on_train_begin()
    assert restored._initial_epoch == 2
    for a, b in zip(restored.get_weights(), kept.by_epoch[2]):
        np.testing.assert_array_equal(a, b)

    # The metadata damaged too: the newest intact file, by its name.
    with open(os.path.join(backup, "training_metadata.json"), "w") as fh:
        fh.write('{"epoch": 3, "che')
    assert checkpoints.latest(backup, report=None).epoch == 2
    # None intact: the damaged file is named.
    older = os.path.join(backup, "epoch-000002.weights.h5")
    with open(older, "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(checkpoints.DamagedCheckpointError, match=re.escape(newest)):
        checkpoints.latest(backup, report=None)


def test_a_keras_backup_folder_of_an_older_version_resumes(tmp_path):
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 3), "float32")
    backup = str(tmp_path / "checkpoints")
    model = _tiny_model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[
        keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)])
    assert checkpoints.latest(backup).epoch == 2
    restored = _tiny_model(seed=1)
    callback = checkpoints.Checkpoints(backup, delete_checkpoint=False)
    callback.set_model(restored)
    callback.on_train_begin()
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_non_finite_loss_stops_with_the_step_and_learning_rate():
    from tfmask.train.optimizer import build_optimizer

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=build_optimizer(1e30, total_steps=8, warmup_steps=0), loss="mse")
    x = np.ones((8, 4), "float32")
    with pytest.raises(checkpoints.NonFiniteLossError) as error:
        model.fit(x, x[:, :3], epochs=2, steps_per_epoch=4, batch_size=2, verbose=0,
                  callbacks=[checkpoints.StopOnNonFiniteLoss(4, "Try a lower rate.")])
    found = re.fullmatch(r"the training loss became (nan|inf) at step (\d+) \(learning rate "
                         r"(\S+)\); training stopped, .* Try a lower rate\.", str(error.value))
    step, rate = int(found.group(2)), float(found.group(3))
    assert 1 <= step <= 8 and rate == pytest.approx(1e30 * (1 - (step - 1) / 8), rel=1e-2)


def test_atomic_writes_keep_the_previous_file_on_failure(tmp_path):
    path = str(tmp_path / "history.json")
    runs.write_json(path, [1])
    with pytest.raises(TypeError):
        runs.write_json(path, [object()])  # fails half way
    assert json.load(open(path)) == [1] and os.listdir(tmp_path) == ["history.json"]
    with pytest.raises(RuntimeError), text_files.atomic_path(path) as tmp:
        open(tmp, "w").write("[2, ")
        raise RuntimeError("killed")
    assert json.load(open(path)) == [1] and os.listdir(tmp_path) == ["history.json"]
    with open(path, "w") as fh:  # damaged by something else
        fh.write("[1, 2")
    with pytest.raises(runs.RunFileError, match=re.escape(path) + r":1: damaged \(invalid JSON"):
        runs.read_json(path)


def test_damaged_run_files_name_the_file(pretraining_run, tmp_path, capsys):
    run = str(tmp_path / "run")
    shutil.copytree(pretraining_run[0], run)
    encoder = os.path.join(run, "encoder.keras")
    with open(encoder, "r+b") as fh:
        fh.truncate(5000)
    with pytest.raises(runs.RunFileError, match=re.escape(encoder) + ": damaged: not a "
                       "complete .keras file"):
        runs.load_encoder(run)
    code, err = _main(["finetune", "ner", "--init", run, "--seq-len", "32", "--out",
                       str(tmp_path / "ner")], capsys)
    assert code == 2 and f"{encoder}: damaged" in err
    # Keras safe mode: a Lambda layer's Python code is never run.
    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs)).save(encoder)
    with pytest.raises(runs.RunFileError, match="refused: it holds Python code"):
        runs.load_encoder(run)
    # A changed config.json: the file and line, before anything is overwritten.
    with open(os.path.join(run, "config.json"), "w") as fh:
        fh.write('{"train":\n')
    code, err = _main(["pretrain", "--corpus", pretraining_run[2].data.corpus[0], "--vocab",
                       os.path.join(run, "vocab.txt"), "--out", run], capsys)
    assert code == 2 and f"{run}/config.json:2: damaged (invalid JSON" in err


def test_unexpected_errors_are_one_line_too(monkeypatch, capsys):
    def check(args):
        raise KeyError("surprise")

    add_parser, _, run = cli._COMMANDS["predict"]
    monkeypatch.setitem(cli._COMMANDS, "predict", (add_parser, check, run))
    code, err = _main(["predict", ".", "x"], capsys)
    assert code == 1 and "error: KeyError: 'surprise' (unexpected: --debug" in err
    assert cli.one_line(tf.errors.ResourceExhaustedError(
        None, None, "/m/.tmp/saved_model.pb.tmp; No space left on device"))[0].startswith(
        "the disk is full: /m/.tmp/saved_model.pb.tmp")
    message, code = cli.one_line(tf.errors.InvalidArgumentError(
        None, None, "{{function_node __wrapped__X}} bad shape [[{{node y}}]]\nmore"))
    assert (message, code) == ("bad shape (more with --debug)", 2)


# ----------------------------------------------------------------------------------------------
# Interruptions: kill -9 during fine-tuning and during export
# ----------------------------------------------------------------------------------------------
def _kill_when(argv, ready, log, timeout=300):
    """Runs `tfmask ARGV` in a new process and SIGKILLs it as soon as `ready()` holds (polled,
    no random delay); asserts it died by the signal. Its output goes to the file `log`."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tfmask", *argv], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONPATH=REPO))
        deadline = time.time() + timeout
        while not ready():
            assert proc.poll() is None, "it ended before it could be killed: " + (
                open(log).read()[-2000:])
            assert time.time() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL


def _epoch(path) -> int:
    try:
        return json.load(open(path))["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def _finetune_args(init, data_dir, out):
    """A small deterministic fine-tuning run (dropout and masking augmentation on): 2 epochs
    of 40 steps."""
    return ["finetune", "sentiment", "--init", init, "--train", data_dir["sentiment_train"],
            "--valid", data_dir["sentiment_dev"], "--seq-len", "16", "--max-train-examples",
            "320", "--batch-size", "8", "--epochs", "2", "--mask-rate", "0.15", "--seed", "3",
            "--learning-rate", "1e-3", "--deterministic", "--out", out]


def _without_timing(path):
    records = json.load(open(path))
    if isinstance(records, list):
        return [{k: v for k, v in r.items() if k not in ("train_seconds", "first_step_seconds")}
                for r in records]
    return records


def test_finetune_killed_after_a_checkpoint_resumes_as_if_never_interrupted(
        fill_mask_run, data_dir, tmp_path):
    """kill -9 after a chosen checkpoint (epoch 1 of 2), the same command again: it resumes
    there and ends with the history, per-step losses and metrics of an uninterrupted run
    (which also shows that --seed with --deterministic repeats a run exactly)."""
    reference, out = str(tmp_path / "reference"), str(tmp_path / "run")
    env = dict(os.environ, PYTHONPATH=REPO)
    uninterrupted = subprocess.Popen(  # alongside the run that gets killed
        [sys.executable, "-m", "tfmask", *_finetune_args(fill_mask_run, data_dir, reference)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metadata = os.path.join(out, "checkpoints", "main", "training_metadata.json")
    _kill_when(_finetune_args(fill_mask_run, data_dir, out), lambda: _epoch(metadata) >= 1,
               tmp_path / "killed.log")
    killed_at = _epoch(metadata)
    resumed = subprocess.run(
        [sys.executable, "-m", "tfmask", *_finetune_args(fill_mask_run, data_dir, out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, err = uninterrupted.communicate(timeout=600)
    assert uninterrupted.returncode == 0, err.decode()[-3000:]
    found = re.search(r"Resuming .* after epoch (\d+)\.", resumed.stdout)
    assert killed_at in (1, 2)  # 2: killed after the last checkpoint, before model.keras
    assert killed_at == 2 or (found and int(found.group(1)) == killed_at)
    assert [r["epoch"] for r in _without_timing(os.path.join(out, "history.json"))] == [1, 2]
    steps = [r["step"] for r in _without_timing(os.path.join(out, "train_steps.json"))]
    assert steps == sorted(set(steps)) and steps[-1] == 2 * 40  # none lost, none twice
    for name in ("history.json", "train_steps.json", "metrics.json"):
        assert _without_timing(os.path.join(out, name)) == _without_timing(
            os.path.join(reference, name)), name
    assert runs.is_finished(out, "finetune") and not os.path.exists(
        os.path.join(out, "checkpoints"))
    assert [r.get("resumed") for r in json.load(open(os.path.join(out, "environment.json")))
            ] == [False, True]


def test_export_killed_midway_leaves_nothing_the_next_export_trips_over(
        sentiment_run, tmp_path, capsys, no_network):
    base = str(tmp_path / "models")
    staged = os.path.join(base, "s", ".tmp-export-*")
    _kill_when(["export", sentiment_run[0], "--name", "s", "--base-dir", base],
               lambda: glob.glob(os.path.join(staged, "variables", "*")), tmp_path / "log")
    assert glob.glob(staged) and not [n for n in os.listdir(os.path.join(base, "s"))
                                      if n.isdigit()]  # nothing published
    code = cli.main(["export", sentiment_run[0], "--name", "s", "--base-dir", base])
    assert code == 0 and "Removed 1 unfinished export folder" in capsys.readouterr().out
    for name in ("s", "s-ids"):
        assert os.listdir(os.path.join(base, name)) == ["1"]  # complete, no leftovers
    loaded = tf.saved_model.load(os.path.join(base, "s", "1"))
    assert loaded.signatures["serve_text"](text=tf.constant(["fine ."]))["label"].shape == [1]


@pytest.mark.parametrize("error", [
    tf.errors.ResourceExhaustedError(None, None, "saved_model.pb.tmp; No space left on device"),
    OSError(errno.ENOSPC, "No space left on device", "assets.extra/op_audit.json"),
])
def test_a_full_disk_during_export_is_one_line_and_keeps_earlier_versions(
        error, exported, sentiment_run, tmp_path, monkeypatch, capsys):
    """The errors a full disk raises (TensorFlow's writer: ResourceExhaustedError, as measured
    on a full tmpfs; Python's: OSError ENOSPC) are injected at the write."""
    from tfmask.serve import export

    base = str(tmp_path / "models")
    shutil.copytree(exported["sentiment"]["text"]["path"], os.path.join(base, "s", "1"))
    writes, save = [], tf.saved_model.save

    def full(*args, **kwargs):
        writes.append(args)
        if len(writes) == 2 or isinstance(error, OSError):
            raise error
        save(*args, **kwargs)

    if isinstance(error, OSError):  # Python's writes: the warm-up file
        monkeypatch.setattr(export, "write_warmup", full)
    else:  # TensorFlow's writer: the second SavedModel
        monkeypatch.setattr(tf.saved_model, "save", full)
    code, err = _main(["export", sentiment_run[0], "--name", "s", "--base-dir", base], capsys)
    assert code == 2
    assert f"{base}: no space left on the device while writing the export" in err
    assert "earlier versions are intact" in err
    assert os.listdir(os.path.join(base, "s")) == ["1"] and os.listdir(
        os.path.join(base, "s-ids")) == []
    assert tf.saved_model.load(os.path.join(base, "s", "1")).signatures["serve_text"]


def test_stale_staging_folders_go_and_live_ones_stay(tmp_path):
    import fcntl

    from tfmask.serve import publishing

    model_dir = str(tmp_path / "m")
    with publishing.staging(model_dir) as live:  # held by this process: never removed
        stale = os.path.join(model_dir, ".tmp-export-abcd1234")
        os.makedirs(os.path.join(stale, "variables"))
        open(stale + ".lock", "w").close()  # its process died: the lock is free
        lockless = os.path.join(model_dir, ".tmp-export-zzzz9999")
        os.makedirs(lockless)
        other = os.path.join(model_dir, ".tmp-export-weights-abcdefgh")  # not a staging name
        os.makedirs(other)
        assert sorted(publishing.remove_stale(model_dir)) == [stale, lockless]
        assert os.path.isdir(live) and os.path.isdir(other)
        fd = os.open(live + ".lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    assert sorted(os.listdir(model_dir)) == [".tmp-export-weights-abcdefgh"]


# ----------------------------------------------------------------------------------------------
# Importing: damaged and untrusted checkpoints
# ----------------------------------------------------------------------------------------------
def test_a_truncated_safetensors_file_names_the_file(tmp_path, capsys):
    source = write_hf_folder(tmp_path / "hf", hf_state_dict(google_bert_tensors(seed=1)))
    weights = os.path.join(source, "model.safetensors")
    with open(weights, "r+b") as fh:
        fh.truncate(os.path.getsize(weights) // 2)
    code, err = _main(["import", source, "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and f"{weights}: damaged safetensors file (" in err
    assert not os.path.exists(tmp_path / "run")


def test_an_interrupted_import_is_redone_and_a_finished_one_kept(tmp_path, capsys,
                                                                no_network):
    from tfmask.interop import import_checkpoint

    source = write_hf_folder(tmp_path / "hf", hf_state_dict(google_bert_tensors(seed=1)))
    run = str(tmp_path / "run")
    import_checkpoint(source, run)
    os.remove(os.path.join(run, "import_report.json"))  # killed before its last write
    import_checkpoint(source, run)  # redone, not refused
    assert os.path.exists(os.path.join(run, "import_report.json"))
    code, err = _main(["import", source, "--out", run], capsys)
    assert code == 2 and "already holds an encoder" in err


def test_pytorch_pickles_are_read_with_weights_only():
    """Every torch.load of the importers passes weights_only=True (the pickle's code is never
    run); with torch installed, a pickle that would run code is refused."""
    import tfmask.interop as interop

    root = os.path.dirname(interop.__file__)
    calls = []
    for path in glob.glob(os.path.join(root, "*.py")):
        source = open(path).read()
        calls += [(path, m) for m in re.findall(r"torch\.load\([^)]*\)", source)]
    assert calls and all("weights_only=True" in call for _, call in calls), calls


def test_a_pickle_that_runs_code_is_refused(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="torch is an optional oracle")
    source = tmp_path / "hf"
    write_hf_folder(source, hf_state_dict(google_bert_tensors(seed=1)))
    os.remove(source / "model.safetensors")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"bert.embeddings.word_embeddings.weight": Payload()},
               str(source / "pytorch_model.bin"))
    code, err = _main(["import", str(source), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "pytorch_model.bin: cannot be read: it holds Python objects" in err
    assert not marker.exists()
    with open(source / "pytorch_model.bin", "wb") as fh:
        fh.write(b"PK\x03\x04 truncated")
    code, err = _main(["import", str(source), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "pytorch_model.bin: cannot be read:" in err


# ----------------------------------------------------------------------------------------------
# Reproducibility
# ----------------------------------------------------------------------------------------------
def test_each_run_records_its_software_apart_from_its_configuration(pretraining_run, tmp_path,
                                                                     capsys):
    import tfmask

    run = str(tmp_path / "run")
    shutil.copytree(pretraining_run[0], run)
    records = json.load(open(os.path.join(run, "environment.json")))
    packages = records[0]["packages"]
    assert packages["tensorflow"] == tf.__version__ and packages["tfmask"] == tfmask.__version__
    assert set(packages) >= {"tensorflow", "tensorflow-text", "keras", "keras-hub", "tfmask"}
    assert "git_revision" in records[0]
    # A resume under other versions: recorded and said, and still the same configuration.
    records[0]["packages"]["tensorflow"] = "2.0.0"
    runs.write_json(os.path.join(run, "environment.json"), records)
    runs.record_environment(run, start_step=2)
    assert f"tensorflow 2.0.0 -> {tf.__version__}" in capsys.readouterr().out
    assert len(json.load(open(os.path.join(run, "environment.json")))) == 2
    runs.claim_run_dir(pretraining_run[2], run)  # no "different configuration"
