"""The NER anchor of finetune_quality.py: Hugging Face transformers + PyTorch, run alone.

Standard HF token classification (as in transformers' run_ner example): fast tokenizer on
pre-split words, the word's label on its first sub-word and -100 elsewhere, truncation at
`--max-sequence-length` pieces, dynamic padding per batch, torch AdamW (weight decay 0.01, not
on LayerNorm/bias) with linear warm-up (10%) and decay, global-norm clip 1.0, seeded shuffle.
Scored with tfmask.metrics.entity_scores (seqeval's default rules, tested equal); words cut off
by truncation are predicted "O". Imports no TensorFlow. Writes one JSON object to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _hf_common import adamw, apply_gradients, import_tfmask_text


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("--model", "--train", "--valid", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--max-sequence-length", type=int, default=128)
    p.add_argument("--max-train-examples", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dropout", type=float,
                   help="hidden, attention and classifier dropout (default: the config's)")
    args = p.parse_args()

    import numpy as np
    import torch
    import transformers

    import_tfmask_text()
    from tfmask.text import readers  # pure Python modules: no TensorFlow import
    from tfmask.text.labels import label_vocabulary
    from tfmask.train import metrics

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = readers.read_conll(args.train)
    if args.max_train_examples:
        train = train[: args.max_train_examples]
    valid = readers.read_conll(args.valid)
    labels = label_vocabulary(train)
    index = {t: i for i, t in enumerate(labels)}
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    rates = {} if args.dropout is None else {"hidden_dropout_prob": args.dropout,
                                             "attention_probs_dropout_prob": args.dropout}
    model = transformers.BertForTokenClassification.from_pretrained(
        args.model, num_labels=len(labels), **rates)

    def encode(sentences):
        enc = tokenizer([s.words for s in sentences], is_split_into_words=True,
                        truncation=True, max_length=args.max_sequence_length)
        rows = []
        for i, s in enumerate(sentences):
            word_ids = enc.word_ids(i)
            label_ids, previous = [], None
            for w in word_ids:
                label_ids.append(-100 if w is None or w == previous else index[s.tags[w]])
                previous = w
            rows.append({"input_ids": enc["input_ids"][i], "labels": label_ids,
                         "word_ids": word_ids})
        return rows

    def batches(rows, shuffle, epoch):
        order = np.arange(len(rows))
        if shuffle:
            np.random.default_rng([args.seed, epoch]).shuffle(order)
        for start in range(0, len(rows), args.batch_size):
            chunk = [rows[i] for i in order[start:start + args.batch_size]]
            width = max(len(r["input_ids"]) for r in chunk)
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.long)
            y = torch.full((len(chunk), width), -100, dtype=torch.long)
            for j, r in enumerate(chunk):
                n = len(r["input_ids"])
                ids[j, :n] = torch.tensor(r["input_ids"])
                mask[j, :n] = 1
                y[j, :n] = torch.tensor(r["labels"])
            yield chunk, ids, mask, y

    train_rows, valid_rows = encode(train), encode(valid)
    steps = -(-len(train_rows) // args.batch_size) * args.epochs
    optimizer = adamw(model, args.learning_rate)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, max(1, steps // 10),
                                                            steps)
    history = []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        for _, ids, mask, y in batches(train_rows, True, epoch):
            loss = model(input_ids=ids, attention_mask=mask, labels=y).loss
            apply_gradients(loss, model, optimizer, schedule)
        train_seconds = time.perf_counter() - t0
        model.eval()
        predicted = []
        with torch.no_grad():
            for chunk, ids, mask, _ in batches(valid_rows, False, 0):
                logits = model(input_ids=ids, attention_mask=mask).logits.argmax(-1).numpy()
                for j, r in enumerate(chunk):
                    predicted.append((r["word_ids"], logits[j]))
        pred_tags = []
        for s, (word_ids, row) in zip(valid, predicted):
            tags, previous = ["O"] * len(s.words), None
            for position, w in enumerate(word_ids):
                if w is not None and w != previous:
                    tags[w] = labels[row[position]]
                previous = w
            pred_tags.append(tags)
        scores = metrics.entity_scores([s.tags for s in valid], pred_tags)
        history.append({"epoch": epoch + 1, "precision": scores["precision"],
                        "recall": scores["recall"], "f1": scores["f1"],
                        "train_seconds": train_seconds})
        print(json.dumps(history[-1]), file=sys.stderr, flush=True)
    best = max(history, key=lambda r: r["f1"])
    truncated = sum(len(sent.words) - len({w for w in r["word_ids"] if w is not None})
                    for sent, r in zip(valid, valid_rows))
    result = {"precision": best["precision"], "recall": best["recall"], "f1": best["f1"],
              "best_epoch": best["epoch"], "train_seconds": sum(h["train_seconds"]
                                                                for h in history),
              "fit_and_eval_seconds": time.perf_counter() - start,
              "settings": {"padding": "per batch", "torch_threads": args.threads,
                           "dropout": model.config.hidden_dropout_prob,
                           "torch": torch.__version__, "transformers": transformers.__version__,
                           "valid_words_truncated_predicted_O": truncated}}
    with open(args.out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
