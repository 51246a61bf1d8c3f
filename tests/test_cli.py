"""End-to-end `tfmask pretrain` runs: the run directory, resume after SIGKILL, clear errors;
a command line that answers at once (argument errors before TensorFlow loads, `--version`,
help texts) and leaves no run folder behind when it fails."""

from __future__ import annotations

import json
import os
import re
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
                 "history.json", "history.png", "tensorboard"):
        assert os.path.exists(os.path.join(out, name)), name
    # Finished: the resume checkpoints (the only optimizer state) are removed.
    assert not os.path.exists(os.path.join(out, "checkpoints"))
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

    # Re-running a finished run says so and trains nothing more.
    again = run_cli(pretrain_args(corpus, out, steps=20, save_every=10))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "is a finished run" in again.stdout and "Resuming" not in again.stdout
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
    # --seed + --deterministic: the same history.json as the uninterrupted run, timing aside
    # (the rows before the kill come from another process than the rest).
    timing = {"tokens_per_second", "wall_time"}
    expected = json.load(open(os.path.join(reference, "history.json")))
    assert [{k: v for k, v in r.items() if k not in timing} for r in history] == [
        {k: v for k, v in r.items() if k not in timing} for r in expected]
    # Each start of the run is recorded with its package versions, config.json has none.
    started = json.load(open(os.path.join(out, "environment.json")))
    assert [r["start_step"] for r in started] == [0, start]
    assert started[0]["packages"]["tensorflow"] and "packages" not in json.load(
        open(os.path.join(out, "config.json")))


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



# ----------------------------------------------------------------------------------------------
# A command line that answers at once
# ----------------------------------------------------------------------------------------------
#: Runs `cli.main` on each argument list in one fresh interpreter; per case: the exit code,
#: stderr, and whether TensorFlow (or Keras, tensorflow-text) was loaded by then.
_CHECK_SCRIPT = """
import contextlib, io, json, sys
from tfmask import cli
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    loaded = sorted(m for m in ("tensorflow", "keras", "tensorflow_text") if m in sys.modules)
    results.append({"code": code, "err": err.getvalue(), "loaded": loaded})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A good CoNLL file, a run folder that is not a run, and one whose encoder is short."""
    root = tmp_path_factory.mktemp("files")
    conll = root / "good.conll"
    conll.write_text("Alice B-PER\nsmiled O\n")
    (root / "not_a_run").mkdir()
    (root / "not_a_run" / "config.json").write_text("{}")
    short = root / "short"
    short.mkdir()
    (short / "config.json").write_text(json.dumps({"encoder": {"max_sequence_length": 64}}))
    (short / "encoder.keras").write_bytes(b"")
    (short / "vocab.txt").write_text("[PAD]\n")
    return {"conll": str(conll), "not_a_run": str(root / "not_a_run"), "short": str(short),
            "missing": str(root / "missing"), "root": str(root)}


#: (arguments, what the one-line error says); {conll} etc. are `files`, {out} a new folder.
ARGUMENT_ERRORS = [
    (["finetune", "ner", "--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    (["pretrain", "--masking", "spam"], "--masking must be one of random, whole_word, span"),
    (["pretrain", "--masking", "span:0.5,random"], "each part of a mixture is NAME:WEIGHT"),
    (["pretrain", "--masking", "span:0,random:1"], "with a weight > 0"),
    (["pretrain", "--final-selection-rate", "0"], "--final-selection-rate must be in (0, 1]"),
    (["pretrain"], "the following arguments are required: --out"),
    (["pretrain", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["pretrain", "--steps", "-1"], "--steps must be >= 1, got -1"),
    (["pretrain", "--save-every", "0"], "--save-every must be >= 1, got 0"),
    (["pretrain", "--selection-rate", "1.5"], "--selection-rate must be in (0, 1], got 1.5"),
    (["pretrain", "--mask-token-rate", "0.9", "--random-token-rate", "0.2"],
     "--mask-token-rate + --random-token-rate must be <= 1"),
    (["pretrain", "--max-predictions", "100", "--seq-len", "64"],
     "--max-predictions (100) must be <= --seq-len (64)"),
    (["pretrain", "--seq-len", "2"], "--seq-len must be >= 3, got 2"),
    (["pretrain", "--eval-holdout", "1"], "--eval-holdout must be in [0, 1), got 1.0"),
    (["pretrain", "--warmup-steps", "-2"], "--warmup-steps must be >= 0 (or -1"),
    (["pretrain", "--seed", "-1"], "--seed must be in [0, 4294967295], got -1"),
    (["pretrain", "--learning-rate", "0"], "--learning-rate must be > 0, got 0.0"),
    (["pretrain", "--corpus", "{conll}", "--tfds", "wiki:train"],
     "give --corpus or --tfds, not both"),
    (["pretrain", "--tfds", "wikipedia"], "--tfds expects NAME:SPLIT"),
    (["pretrain", "--set", "masking.strategy=spam"],
     "--masking must be one of random, whole_word, span"),
    (["pretrain", "--set", "train.clipnorm=0"], "train.clipnorm must be > 0, got 0.0"),
    (["pretrain", "--vocab", "{missing}"], "--vocab {missing}: no such file"),
    (["pretrain", "--corpus", "{missing}/*.txt"], "matches no file"),
    (["pretrain", "--out", "{conll}"], "--out {conll}: not a directory"),
    (["finetune", "ner", "--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
    (["finetune", "ner", "--epochs", "3", "--freeze-epochs", "3"],
     "--freeze-epochs (3) must be less than --epochs (3)"),
    (["finetune", "ner", "--seq-len", "64", "--window-stride", "63"],
     "--window-stride must be in [1, 62], got 63"),
    (["finetune", "sentiment", "--set", "data.truncation=middle"],
     "--truncation must be one of head, head_tail; got 'middle'"),
    (["finetune", "sentiment", "--layer-decay", "0"], "--layer-decay must be in (0, 1], got 0"),
    (["finetune", "ner", "--train", "{conll}"], "--valid is required with --train"),
    (["finetune", "ner", "--valid", "{conll}"], "--valid needs --train"),
    (["finetune", "ner", "--train", "{missing}", "--valid", "{conll}"],
     "--train {missing}: no such file"),
    # Paths before data: a wrong --init is reported although --train and --valid are fine.
    (["finetune", "ner", "--init", "{missing}", "--train", "{conll}", "--valid", "{conll}"],
     "--init {missing}: no such run directory"),
    (["finetune", "ner", "--init", "{not_a_run}", "--train", "{conll}", "--valid", "{conll}"],
     "--init {not_a_run}: no encoder.keras, vocab.txt (not a finished tfmask pretrain or "
     "import run?)"),
    (["finetune", "ner", "--init", "{short}", "--seq-len", "128"],
     "--seq-len 128 exceeds the encoder's 64 positions"),
    (["pretrain", "--init", "{missing}"], "--init {missing}: no such run directory"),
    (["pretrain", "--init", "{short}"], "--seq-len 128 exceeds the encoder's 64 positions"),
    (["pretrain", "--init", "{short}", "--vocab-size", "500"],
     "--vocab-size conflicts with --init {short}: a continued run keeps the vocabulary"),
    (["pretrain", "--init", "{short}", "--preset", "bert_mini"], "--preset conflicts with"),
    (["pretrain", "--init", "{short}", "--seq-len", "64", "--set", "tokenizer.vocab={conll}"],
     "--vocab conflicts with --init {short}"),
    (["evaluate", "{missing}", "--data", "{conll}"], "{missing}: no such run directory"),
    (["evaluate", "{not_a_run}", "--data", "{conll}"], "no model.keras"),
    (["export", "{missing}", "--name", "x"], "{missing}: no such run directory"),
    (["predict", "{root}"], "give texts to predict, or --file FILE"),
    (["predict", "{root}", "--file", "{missing}"], "--file {missing}: no such file"),
]


def _fill(text: str, files: dict, out: str) -> str:
    return text.format(out=out, **files)


@pytest.fixture(scope="module")
def argument_errors(files):
    """Every `ARGUMENT_ERRORS` case, run in one fresh interpreter (results by index)."""
    out = os.path.join(files["root"], "new", "run")
    cases = []
    for argv, _ in ARGUMENT_ERRORS:
        argv = [_fill(a, files, out) for a in argv]
        if argv[0] in ("pretrain", "finetune") and "--out" not in argv and argv != ["pretrain"]:
            argv += ["--out", out]
        cases.append(argv)
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, "-c", _CHECK_SCRIPT, json.dumps(cases)],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not os.path.exists(os.path.join(files["root"], "new"))  # nothing was written
    return json.loads(result.stdout)


@pytest.mark.parametrize("index", range(len(ARGUMENT_ERRORS)),
                         ids=[" ".join(argv[:3]) for argv, _ in ARGUMENT_ERRORS])
def test_argument_errors_answer_before_tensorflow_loads(index, argument_errors, files):
    """Exit 2, one line that names the flag, and TensorFlow never imported."""
    message = _fill(ARGUMENT_ERRORS[index][1], files, "")
    result = argument_errors[index]
    assert result["code"] == 2, result
    assert len(result["err"].strip().splitlines()) == 1, result["err"]
    assert message in result["err"]
    assert result["err"].startswith("tfmask")
    assert result["loaded"] == [], f"imported {result['loaded']} before answering"


def test_version():
    import tfmask

    result = run_cli(["--version"])
    assert result.returncode == 0
    assert result.stdout == f"tfmask {tfmask.__version__}\n" == "tfmask 0.1.0\n"


def test_debug_is_accepted_before_and_after_the_command():
    parse = cli.build_parser().parse_args
    assert parse(["--debug", "pretrain", "--out", "x"]).debug
    assert parse(["pretrain", "--out", "x", "--debug"]).debug
    assert parse(["finetune", "ner", "--debug", "--out", "x"]).debug
    assert not parse(["pretrain", "--out", "x"]).debug


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _commands(usage: str) -> list[str]:
    """The sub-command names a usage line offers: `{pretrain,import,...} ...` (an option's
    choices have no `...` after them)."""
    found = re.search(r"\{([\w,-]+)\}\s+\.\.\.", usage)
    return found.group(1).split(",") if found else []


def test_every_command_has_a_description_and_shows_each_default_once(capsys):
    top = _help([], capsys)
    commands = [[c] for c in _commands(top)]
    assert len(commands) == 9
    seen = []
    while commands:
        argv = commands.pop()
        text = _help(argv, capsys)
        seen.append(" ".join(argv))
        commands += [argv + [c] for c in _commands(text.split("\n\n")[0])]
        description = text.split("\n\n")[1]
        assert not description.startswith(("options:", "positional arguments:")), (
            f"tfmask {' '.join(argv)} --help has no description")
        assert "(default: None)" not in text, argv
        for line in re.split(r"\n  (?=-)", text):  # one option's help at a time
            assert len(re.findall(r"\(default", line)) <= 1, line
    assert {"finetune ner", "finetune sentiment", "evaluate", "predict"} <= set(seen)


def test_every_config_flag_is_an_option_of_its_command():
    """The flag tables that name flags in messages and copy flags onto fields agree with the
    parsers (a renamed flag or field fails here)."""
    from tfmask.config import FINETUNE_FLAGS, PRETRAIN_FLAGS, Experiment, FinetuneExperiment

    parse = cli.build_parser().parse_args
    for flags, argv, experiment in (
            (PRETRAIN_FLAGS, ["pretrain"], Experiment()),
            (FINETUNE_FLAGS, ["finetune", "ner"], FinetuneExperiment()),
            (FINETUNE_FLAGS, ["finetune", "sentiment"], FinetuneExperiment()),
            (FINETUNE_FLAGS, ["finetune", "classify"], FinetuneExperiment())):
        options = vars(parse([*argv, "--out", "x"]))
        for key, flag in flags.items():
            section, field = key.split(".")
            assert hasattr(getattr(experiment, section), field), key
            if argv[-1] == "ner" and flag in ("--text-column", "--label-column",
                                              "--truncation", "--text-pair-column"):
                continue
            if argv[-1] != "ner" and flag in ("--tag-column", "--window-stride"):
                continue
            if argv[-1] == "sentiment" and flag == "--text-pair-column":
                continue
            assert flag[2:].replace("-", "_") in options, (argv, flag)


def test_a_failed_command_leaves_no_new_folder(tmp_path, capsys):
    """A command that fails before training removes the --out (and the parents) it created;
    a folder that existed before is left as it was."""
    bad = tmp_path / "bad.conll"
    bad.write_text("Alice B-PER\nsmiled\n")  # line 2 lacks its tag
    out = tmp_path / "runs" / "new"
    argv = ["finetune", "ner", "--train", str(bad), "--valid", str(bad), "--out"]
    assert cli.main([*argv, str(out)]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    assert cli.main([*argv, str(existing)]) == 2
    assert (existing / "notes.txt").read_text() == "mine"


def test_tensorflow_start_up_lines_are_held_back(tmp_path):
    """No absl notice and no INFO/WARNING/ERROR log line on stderr from importing TensorFlow,
    finding devices (cuInit without a GPU) or an int64 matmul (oneDNN's notice)."""
    script = ("import sys\nfrom tfmask import cli\ncli._import_tensorflow_quietly()\n"
              "import tensorflow as tf\ntf.config.list_logical_devices()\n"
              "x = tf.constant([[1, 2]], tf.int64)\ntf.matmul(x, tf.transpose(x)).numpy()\n"
              "print('done', file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, cwd=str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "done\n", result.stderr
