"""`tfmask show RUN`: a pretraining, an import and fine-tuning runs (finished and not), as
text and as JSON, checked against the files each run wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import google_bert_tensors, hf_state_dict, write_hf_folder
from tfmask import cli, runs
from tfmask.commands import show


@pytest.fixture(scope="module")
def import_run(tmp_path_factory):
    """A synthetic BERT with its MLM head, imported from a Hugging Face folder."""
    from tfmask.interop import import_checkpoint

    root = tmp_path_factory.mktemp("show_import")
    source = write_hf_folder(root / "hf", hf_state_dict(google_bert_tensors(seed=3)))
    import_checkpoint(source, str(root / "run"))
    return str(root / "run"), source


def _show(capsys, *args) -> str:
    assert cli.main(["show", *args]) == 0
    return capsys.readouterr().out


def _rows(text: str) -> dict[str, str]:
    """`label: value` rows of the text output (the first line is the title)."""
    lines = text.rstrip("\n").splitlines()
    return {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
            for line in lines[1:]}


def test_show_a_pretraining_run(pretraining_run, capsys):
    run, _, experiment = pretraining_run
    history = runs.read_run_json(run, "history.json")
    text = _show(capsys, run)
    assert text.splitlines()[0] == f"{run}: pretraining, finished"
    rows = _rows(text)
    assert experiment.data.corpus[0] in rows["from"]
    assert f"vocabulary learned, {runs.read_config(run)['tokenizer']['vocabulary_size']}" in (
        rows["from"])
    assert rows["encoder"].startswith("2 layers, hidden 128, 2 heads")
    assert "preset bert_tiny, steps 2, batch size 8" in rows["config"]
    assert rows["last"].startswith(f"step {history[-1]['step']}: loss {history[-1]['loss']:.4g}")
    best = max(history, key=lambda r: r["eval_masked_accuracy"])
    assert rows["best"].startswith(
        f"step {best['step']}: eval masked accuracy {best['eval_masked_accuracy']:.4g}")
    assert rows["plots"] == os.path.join(run, "history.png")
    assert rows["tensorboard"] == f"tensorboard --logdir {os.path.join(run, 'tensorboard')}"
    assert "tensorflow 2." in rows["software"]


def test_show_an_import_run(import_run, capsys):
    run, source = import_run
    report = runs.read_run_json(run, "import_report.json")
    text = _show(capsys, run)
    assert text.splitlines()[0] == f"{run}: imported checkpoint, finished"
    rows = _rows(text)
    assert rows["from"] == (f"{source} (huggingface): {report['imported']} tensors, with the "
                            "MLM head")
    e = report["encoder"]
    assert rows["encoder"].startswith(f"{e['num_layers']} layers, hidden {e['hidden_dim']}")
    assert "best" not in rows and "plots" not in rows


def test_show_a_ner_run_fine_tuned_from_an_import(import_run, data_dir, tmp_path, capsys):
    """The source chain: the fine-tuning run names its --init run and the checkpoint that run
    imported."""
    from helpers import finetune_experiment
    from tfmask.train import finetuning

    from tfmask import demo

    init, source = import_run
    valid = str(tmp_path / "valid.txt")
    demo.write_conll(valid, demo.ner_sentences(1, 16))
    e = finetune_experiment("ner", data_dir["ner_train"], valid, epochs=1, batch_size=16,
                            learning_rate=1e-3, init=init)
    e.data.max_train_examples = 16
    e.data.max_sequence_length = 16  # the synthetic checkpoint's positions
    run = str(tmp_path / "ner")
    finetuning.finetune(e, run, verbose=0)
    capsys.readouterr()  # what fine-tuning printed (its precision, its first step)
    best = runs.read_run_json(run, "metrics.json")
    rows = _rows(_show(capsys, run))
    assert rows["from"] == f"{init} (import run of {source}, huggingface)"
    assert rows["data"] == (f"train {data_dir['ner_train']}, valid {valid}; 9 labels (LOC, "
                            "MISC, ORG, PER)")
    assert rows["best"] == (f"epoch {best['epoch']}: f1 {best['f1']:.4g}, precision "
                            f"{best['precision']:.4g}, recall {best['recall']:.4g} "
                            f"(validation, {best['examples']:,} examples)")
    assert rows["per type F1"] == ", ".join(
        f"{k} {v['f1']:.4g}" for k, v in best["per_type"].items())
    assert rows["plots"] == ", ".join(os.path.join(run, p)
                                      for p in ("history.png", "per_type_f1.png"))


def test_show_a_sentiment_run_as_json(sentiment_run, capsys):
    run, best, experiment = sentiment_run
    info = json.loads(_show(capsys, run, "--json"))
    assert info == json.loads(json.dumps(show.describe(run)))
    assert info["kind"] == "finetune" and info["task"] == "sentiment"
    assert info["state"] == "finished"
    assert info["source"] == {"init": None, "random": "bert_tiny"}
    assert info["labels"] == runs.load_labels(run)
    assert info["metrics"]["epoch"] == best["epoch"]
    assert info["metrics"]["accuracy"] == best["accuracy"]
    assert info["config"]["epochs"] == experiment.train.epochs == info["config"]["epochs_run"]
    assert os.path.join(run, "confusion_matrix.png") in info["files"]["plots"]
    rows = _rows(_show(capsys, run))
    assert rows["from"] == "a random bert_tiny encoder (no --init)"
    assert rows["data"].endswith("; 2 labels (negative, positive)")


def test_show_an_unfinished_run(pretraining_run, sentiment_run, tmp_path, capsys):
    """A run killed before its final files: how far it got, and how to resume."""
    pretrain = shutil.copytree(pretraining_run[0], tmp_path / "pretrain")
    os.remove(pretrain / "masked_lm.keras")
    history = runs.read_run_json(str(pretrain), "history.json")
    runs.write_json(str(pretrain / "history.json"), history[:-1])
    first = _show(capsys, str(pretrain)).splitlines()[0]
    assert first == (f"{pretrain}: pretraining, unfinished: "
                     f"{history[-2]['step'] if len(history) > 1 else 0} of "
                     f"{pretraining_run[2].train.steps} steps (re-run the same command to "
                     "resume)")
    finetune = shutil.copytree(sentiment_run[0], tmp_path / "sentiment")
    os.remove(finetune / "model.keras")
    epochs = len(runs.read_run_json(str(finetune), "history.json"))
    assert _show(capsys, str(finetune)).splitlines()[0] == (
        f"{finetune}: fine-tuning (sentiment), unfinished: {epochs} of "
        f"{sentiment_run[2].train.epochs} epochs (re-run the same command to resume)")


def test_show_refuses_what_is_not_a_run(tmp_path, capsys):
    assert cli.main(["show", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err == (f"tfmask show: error: {tmp_path / 'nothing'}: no such "
                                       "run directory\n")
    assert cli.main(["show", str(tmp_path)]) == 2
    assert "no config.json (not a tfmask run directory?)" in capsys.readouterr().err


def test_show_loads_no_tensorflow(ner_run):
    """It reads JSON files only: in a fresh process, neither TensorFlow nor Keras loads."""
    code = ("import sys; from tfmask import cli; assert cli.main(['show', sys.argv[1]]) == 0; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tensorflow_text')))")
    out = subprocess.run([sys.executable, "-c", code, ner_run[0]], capture_output=True,
                         text=True, check=True).stdout
    assert out.splitlines()[0] == f"{ner_run[0]}: fine-tuning (ner), finished"
    assert out.splitlines()[-1] == "[]"
