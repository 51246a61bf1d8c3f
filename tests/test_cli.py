"""End-to-end `tfmask pretrain` runs: the run directory, resume after SIGKILL, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import write_corpus
from tfmask import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def pretrain_args(corpus, out, steps=40, save_every=5, *extra):
    return ["pretrain", "--corpus", corpus, "--seq-len", "32", "--batch-size", "8",
            "--steps", str(steps), "--save-every", str(save_every), "--vocab-size", "120",
            "--eval-holdout", "0.05", "--eval-steps", "2", "--out", out, *extra]


def run_cli(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "tfmask", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, **kwargs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def test_pretrain_run_directory(corpus, tmp_path):
    out = str(tmp_path / "run")
    result = run_cli(pretrain_args(corpus, out, steps=20, save_every=10))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("config.json", "vocab.txt", "encoder.keras", "masked_lm.keras",
                 "history.json", "history.png", "checkpoints", "tensorboard"):
        assert os.path.exists(os.path.join(out, name)), name
    history = json.load(open(os.path.join(out, "history.json")))
    assert [r["step"] for r in history] == [10, 20]
    for key in ("loss", "masked_accuracy", "tokens_per_second", "eval_loss",
                "eval_masked_accuracy"):
        assert np.isfinite(history[-1][key]), key
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["train"]["steps"] == 20 and config["data"]["max_sequence_length"] == 32
    assert config["encoder"]["vocabulary_size"] == len(open(os.path.join(out, "vocab.txt"))
                                                       .read().splitlines())
    assert "Results in" in result.stdout

    # Later commands load the encoder from the run directory.
    from tfmask.runs import load_encoder

    encoder = load_encoder(out)
    assert encoder.num_layers == 2 and encoder.hidden_dim == 128

    # Re-running a finished run resumes at its end and trains nothing more.
    again = run_cli(pretrain_args(corpus, out, steps=20, save_every=10))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming" in again.stdout and "from step 20 of 20" in again.stdout
    assert [r["step"] for r in json.load(open(os.path.join(out, "history.json")))] == [10, 20]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(corpus, tmp_path):
    """Poll for checkpoint N (no random timing), SIGKILL, re-run: resumes strictly between 0 and
    the total and ends, under op determinism, with the weights of an uninterrupted run."""
    steps, every = 40, 5
    reference = str(tmp_path / "reference")
    ok = run_cli(pretrain_args(corpus, reference, steps, every, "--deterministic"))
    assert ok.returncode == 0, ok.stderr[-3000:]

    out = str(tmp_path / "killed")
    env = dict(os.environ, PYTHONPATH=REPO)
    args = [sys.executable, "-m", "tfmask",
            *pretrain_args(corpus, out, steps, every, "--deterministic",
                           # the vocabulary the reference learned
                           "--vocab", os.path.join(reference, "vocab.txt"))]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, cwd=REPO)
    metadata = os.path.join(out, "checkpoints", "training_metadata.json")
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if json.load(open(metadata))["epoch"] >= 3:
                break
        except (OSError, ValueError, KeyError):
            pass
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    resumed = run_cli(args[3:])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    start = int(resumed.stdout.split("from step ")[1].split()[0])
    assert 0 < start < steps

    from tfmask.runs import load_encoder

    a, b = load_encoder(reference), load_encoder(out)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-6)
    history = json.load(open(os.path.join(out, "history.json")))
    assert [r["step"] for r in history] == list(range(every, steps + 1, every))


def test_changed_config_in_existing_run_is_refused(corpus, tmp_path, capsys):
    out = str(tmp_path / "run")
    os.makedirs(out)
    with open(os.path.join(out, "config.json"), "w") as fh:
        json.dump({"train": {"batch_size": 999}}, fh)
    code = cli.main(pretrain_args(corpus, out, steps=10, save_every=5))
    assert code == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "batch_size: 999 -> 8" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--corpus", "/nonexistent/*.txt"], "matches no file"),
    (["--steps", "30", "--save-every", "7"], "must be a multiple of --save-every"),
    (["--set", "train.nonsense=1"], "train has no field 'nonsense'"),
    (["--set", "train.batch_size=abc"], "invalid literal"),
])
def test_bad_arguments_give_one_line_errors(args, message, tmp_path, capsys, corpus):
    base = ["pretrain", "--corpus", corpus, "--out", str(tmp_path / "run")]
    code = cli.main(base + args)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_finetune_recipe_then_flags():
    """The NER recipe's values (no dropout anywhere) apply; flags override them."""
    recipe = os.path.join(REPO, "pipelines", "ner_conll2003.py")
    args = cli.build_parser().parse_args(
        ["finetune", "ner", "--recipe", recipe, "--encoder-dropout", "0.1", "--out", "unused"])
    exp = cli.finetune_experiment(args)
    assert exp.data.tfds == "conll2003" and exp.train.epochs == 1
    assert exp.train.dropout == 0.0 and exp.train.encoder_dropout == 0.1


def test_recipe_then_flags_resolve_the_config():
    """A recipe's values apply, flags override them, and --set overrides both."""
    recipe = os.path.join(REPO, "pipelines", "pretrain_wikitext_agnews.py")
    args = cli.build_parser().parse_args(
        ["pretrain", "--recipe", recipe, "--steps", "300", "--masking", "whole_word",
         "--set", "train.clipnorm=0.5", "--out", "unused"])
    exp = cli.pretrain_experiment(args)
    assert exp.train.steps == 300 and exp.train.save_every == 100
    assert exp.train.eval_steps == 50  # from the recipe
    assert exp.masking.strategy == "whole_word" and exp.train.clipnorm == 0.5
    assert exp.data.corpus[0].endswith(os.path.join("corpus", "*.txt"))

    # --steps not a multiple of the interval: the largest interval that divides it.
    args = cli.build_parser().parse_args(["pretrain", "--steps", "150", "--out", "unused"])
    assert cli.pretrain_experiment(args).train.save_every == 75


def test_missing_recipe_is_a_one_line_error(tmp_path, capsys):
    code = cli.main(["pretrain", "--recipe", str(tmp_path / "nope.py"), "--out",
                     str(tmp_path / "run")])
    assert code == 2 and "no such file" in capsys.readouterr().err
