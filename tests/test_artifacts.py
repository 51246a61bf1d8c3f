"""What a run directory and an export keep: the model's weights only. The optimizer state
lives in an unfinished run's `checkpoints/` and nowhere else; a finished run has none, and a
re-run of its command trains nothing and returns its results."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import tensorflow as tf

from tfmask import runs
from tfmask.config import Experiment, FinetuneExperiment
from tfmask.serve import export
from tfmask.train import finetuning
from tfmask.train.optimizer import build_optimizer, compile_model
from tfmask.train.pretraining import pretrain


def _h5_contents(h5: h5py.File) -> tuple[set[str], int]:
    """(top-level group names, number of stored values) of a Keras weights file."""
    sizes = []
    h5.visititems(lambda _, item: sizes.append(item.size)
                  if isinstance(item, h5py.Dataset) else None)
    return set(h5), sum(sizes)


def _weights_file(path: str) -> tuple[set[str], int]:
    with h5py.File(path) as h5:
        return _h5_contents(h5)


def _keras_file(path: str) -> tuple[dict, set[str], int]:
    """(compile config, top-level weight groups, number of stored values) of a `.keras` file."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
            return (config.get("compile_config") or {}), *_h5_contents(h5)


def _weight_count(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.weights)


def _saved_model_variables(path: str) -> dict[str, list[int]]:
    """Variable name -> shape of a SavedModel (what TF Serving loads into memory)."""
    variables = dict(tf.train.list_variables(os.path.join(path, "variables", "variables")))
    variables.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
    return variables


def _assert_weights_only(export_path: str, model) -> None:
    variables = _saved_model_variables(export_path)
    assert [name for name in variables if "optimizer" in name] == []
    assert sum(int(np.prod(shape)) for shape in variables.values()) == _weight_count(model)


# --- run files ---------------------------------------------------------------------------------

def test_finetuning_files_hold_the_model_weights_only(ner_run, sentiment_run):
    for run in (ner_run[0], sentiment_run[0]):  # sentiment: two phases, two compiles
        model = runs.load_finetuned(run)[1]
        compile_config, groups, values = _keras_file(os.path.join(run, "model.keras"))
        assert compile_config == {} and "optimizer" not in groups
        assert values == _weight_count(model)
        groups, values = _weights_file(os.path.join(run, "best.weights.h5"))
        assert "optimizer" not in groups and values == _weight_count(model)


def test_pretraining_files_hold_the_model_weights_only(pretraining_run):
    run = pretraining_run[0]
    for name, load in (("encoder.keras", runs.load_encoder),
                       ("masked_lm.keras", runs.load_masked_lm)):
        compile_config, groups, values = _keras_file(os.path.join(run, name))
        assert compile_config == {} and "optimizer" not in groups, name
        assert values == _weight_count(load(run)), name


# --- finished runs -----------------------------------------------------------------------------

def test_finished_runs_hold_no_checkpoints(ner_run, sentiment_run, pretraining_run):
    for run in (ner_run[0], sentiment_run[0], pretraining_run[0]):
        assert runs.CHECKPOINTS not in os.listdir(run), run


def test_rerun_of_a_finished_pretraining_run_trains_nothing(pretraining_run, capsys):
    run, summary, experiment = pretraining_run
    written = {name: os.stat(os.path.join(run, name)).st_mtime_ns
               for name in ("encoder.keras", "masked_lm.keras", "history.json")}
    capsys.readouterr()
    again = pretrain(Experiment.from_dict(experiment.to_dict()), run, verbose=0)
    assert again == summary
    assert f"{run} is a finished run" in capsys.readouterr().out
    assert {name: os.stat(os.path.join(run, name)).st_mtime_ns for name in written} == written
    assert runs.CHECKPOINTS not in os.listdir(run)


# --- run directories written by earlier versions ---------------------------------------------

def _write_old_format(run: str) -> None:
    """Rewrites `run` as earlier versions left it, interrupted after its last checkpoint:
    `.keras` / `.weights.h5` of a compiled model (optimizer variables included) and the
    `BackupAndRestore` state of the last epoch, but no `model.keras` yet."""
    experiment, model, _ = runs.load_finetuned(run)
    compile_model(model, build_optimizer(1e-3, 10, 0, 0.01, None, 1e-6), "accuracy", False)
    model.optimizer.build(model.trainable_variables)
    model.save_weights(os.path.join(run, "best.weights.h5"))
    checkpoints = os.path.join(run, runs.CHECKPOINTS, "main")
    os.makedirs(checkpoints)
    model.save_weights(os.path.join(checkpoints, "latest.weights.h5"))
    with open(os.path.join(checkpoints, "training_metadata.json"), "w") as fh:
        json.dump({"epoch": experiment.train.epochs, "batch": 0}, fh)
    model.save(os.path.join(run, "model.keras"))


def test_old_run_directory_loads_exports_and_finishes_weights_only(ner_run, tmp_path, capsys):
    run, best, experiment = ner_run
    old = str(tmp_path / "old")
    shutil.copytree(run, old)
    _write_old_format(old)
    assert "optimizer" in _keras_file(os.path.join(old, "model.keras"))[1]  # really old-style
    reference = runs.load_finetuned(run)[1]

    # It loads uncompiled, and exports the weights alone.
    model = runs.load_finetuned(old)[1]
    assert getattr(model, "optimizer", None) is None
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    result = export.export(old, "old", str(tmp_path / "saved_models"))
    for which in ("text", "ids"):
        _assert_weights_only(result[which]["path"], reference)
    ids = {"token_ids": np.array([[2, 7, 9, 3]], np.int32),
           "segment_ids": np.zeros((1, 4), np.int32), "padding_mask": np.ones((1, 4), np.int32)}
    served = tf.saved_model.load(result["ids"]["path"]).signatures["serve"](
        **{k: tf.constant(v) for k, v in ids.items()})
    np.testing.assert_allclose(served["logits"].numpy(), reference(ids).numpy(), atol=1e-5)

    # Interrupted before model.keras: the re-run trains nothing (the last epoch is done) and
    # finishes it, weights only, from the old best.weights.h5.
    os.remove(os.path.join(old, "model.keras"))
    capsys.readouterr()
    again = finetuning.finetune(FinetuneExperiment.from_dict(experiment.to_dict()), old,
                                verbose=0)
    assert again["f1"] == best["f1"] and "is a finished run" not in capsys.readouterr().out
    compile_config, groups, values = _keras_file(os.path.join(old, "model.keras"))
    assert compile_config == {} and "optimizer" not in groups
    assert values == _weight_count(reference)
    assert runs.CHECKPOINTS not in os.listdir(old)
    for a, b in zip(runs.load_finetuned(old)[1].get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)

    # Finished: a further re-run says so and returns the same metrics.
    again = finetuning.finetune(FinetuneExperiment.from_dict(experiment.to_dict()), old,
                                verbose=0)
    assert again["f1"] == best["f1"] and f"{old} is a finished run" in capsys.readouterr().out
