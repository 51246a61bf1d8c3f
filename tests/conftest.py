"""Session-wide test set-up.

The CPU is split into two logical devices before TensorFlow initialises, so
`tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])` can be tested on any machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture
def shared_data():
    """Path of ../shared/data; skips the test with a reason when it is absent."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is absent (real-data checks run where it is present, "
                    "as in CI)")
    return os.path.abspath(SHARED_DATA)


# --- Parallel runs (pytest-xdist: `pytest -n 2 --dist loadgroup`, as CI and the README run) --

#: The session's shared runs (the fixtures below), in two families that share no build: a
#: test using a run of a family runs on that family's worker, so each run is built once (a
#: test using both families goes with the fine-tuned runs, which then build the others they
#: need too), and the two families run side by side.
FINETUNED_RUNS = {"ner_run", "sentiment_run", "exported"}
PRETRAINED_RUNS = {"pretraining_run", "fill_mask_run", "pair_run"}
SHARED_RUNS = FINETUNED_RUNS | PRETRAINED_RUNS
#: Files whose tests share nothing costly: each test is scheduled alone (the notebooks: a
#: minute or more each).
SPREAD_FILES = {"tests/test_notebooks.py"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Every test that uses a shared run goes to the worker that builds its family of runs, so
    they are built once however many workers there are; every other test stays with the rest
    of its file, so module-scoped fixtures are built once too, except in `SPREAD_FILES`.
    Without xdist this changes nothing."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)  # runs named by parameter (getfixturevalue)
        if callspec is not None:
            names |= {v for v in callspec.params.values() if isinstance(v, str)}
        path = item.nodeid.split("::")[0]
        if names & FINETUNED_RUNS:
            group = "runs:finetuned"
        elif names & PRETRAINED_RUNS:
            group = "runs:pretrained"
        else:
            # (no "]" in a group name: xdist reads a name ending in one as no group)
            spread = f"{path}:{item.name}".replace("[", "(").replace("]", ")")
            group = spread if path in SPREAD_FILES else path
        item.add_marker(pytest.mark.xdist_group(group))


# --- Shared runs, made once per session (one tiny end-to-end fixture, not one per test) ----

@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """The embedded NER and sentiment data sets, written once."""
    from tfmask import demo

    return demo.write_all(tmp_path_factory.mktemp("embedded"), seed=0)


@pytest.fixture(scope="session")
def ner_run(data_dir, tmp_path_factory):
    """A random bert_tiny NER run on 300 embedded sentences: (run_dir, best metrics,
    experiment). Half-trained on purpose: its mistakes exercise the metrics."""
    from helpers import finetune_experiment
    from tfmask.train import finetuning

    e = finetune_experiment("ner", data_dir["ner_train"], data_dir["ner_valid"], epochs=2,
                            batch_size=8, learning_rate=2e-3)
    e.data.max_train_examples = 300
    run = str(tmp_path_factory.mktemp("ner_run"))
    return run, finetuning.finetune(e, run, verbose=0), e


@pytest.fixture(scope="session")
def sentiment_run(data_dir, tmp_path_factory):
    """Two epochs with every training option on: a frozen first epoch (its own compile),
    masking augmentation, layer-wise learning-rate decay, length buckets, its own encoder
    dropout."""
    from helpers import finetune_experiment
    from tfmask.train import finetuning

    e = finetune_experiment("sentiment", data_dir["sentiment_train"],
                            data_dir["sentiment_dev"], epochs=2, freeze_epochs=1,
                            mask_rate=0.15, layer_decay=0.9, learning_rate=1e-3,
                            encoder_dropout=0.05)
    e.data.max_train_examples = 300
    e.data.length_buckets = [16, 32]
    run = str(tmp_path_factory.mktemp("sentiment_run"))
    return run, finetuning.finetune(e, run, verbose=0), e


@pytest.fixture(scope="session")
def pair_run(data_dir, tmp_path_factory):
    """A random bert_tiny `classify` run on 200 embedded premise/hypothesis pairs (3 classes),
    one epoch: (run_dir, best metrics, experiment)."""
    from helpers import finetune_experiment
    from tfmask.train import finetuning

    e = finetune_experiment("classify", data_dir["pairs_train"], data_dir["pairs_dev"],
                            epochs=1, batch_size=16, learning_rate=1e-3)
    e.data.text_column, e.data.text_pair_column = "premise", "hypothesis"
    e.data.max_train_examples = 200
    e.data.max_sequence_length = 64
    run = str(tmp_path_factory.mktemp("pair_run"))
    return run, finetuning.finetune(e, run, verbose=0), e


@pytest.fixture(scope="session")
def pretraining_run(tmp_path_factory):
    """A few steps of bert_tiny MLM on a small written corpus: (run_dir, summary, experiment).

    Enough to write every file a pretraining run writes (encoder.keras, masked_lm.keras,
    config.json, vocab.txt, history, checkpoints), not to learn anything."""
    from helpers import write_corpus
    from tfmask.config import Experiment
    from tfmask.train.pretraining import pretrain

    root = tmp_path_factory.mktemp("pretraining_run")
    e = Experiment()
    e.data.corpus = [write_corpus(str(root / "corpus"), num_lines=200)]
    e.data.eval_corpus = [write_corpus(str(root / "eval_corpus"), num_lines=40, seed=1)]
    e.data.max_sequence_length = 32
    e.tokenizer.vocabulary_size = 120
    e.train.batch_size = 8
    e.train.steps = e.train.save_every = 2
    e.train.eval_steps = 1
    run = str(root / "run")
    return run, pretrain(e, run, verbose=0), e


@pytest.fixture(scope="session")
def fill_mask_run(tmp_path_factory):
    """An imported synthetic BERT with its MLM head: a run `export` turns into fill-mask."""
    from helpers import google_bert_tensors, hf_state_dict, write_hf_folder
    from tfmask.interop import import_checkpoint

    root = tmp_path_factory.mktemp("fill_mask")
    source = write_hf_folder(root / "hf", hf_state_dict(google_bert_tensors(seed=2)))
    import_checkpoint(source, str(root / "run"))
    return str(root / "run")


@pytest.fixture(scope="session")
def exported(ner_run, sentiment_run, fill_mask_run, tmp_path_factory):
    """The NER, sentiment and fill-mask runs exported once (tests/test_export.py, and the
    property tests of serve_text): {kind: export()'s result, "base", "runs"}."""
    from tfmask.serve import export

    base = str(tmp_path_factory.mktemp("saved_models"))
    runs_by_kind = {"sentiment": sentiment_run[0], "ner": ner_run[0], "fill_mask": fill_mask_run}
    results = {kind: export.export(run, kind, base) for kind, run in runs_by_kind.items()}
    return {"base": base, "runs": runs_by_kind, **results}
