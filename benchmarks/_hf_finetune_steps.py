"""The HF side of finetune_vs_hf.py: BertForTokenClassification on the saved NER batches.

--mode time: dropout 0.1, one untimed pass then --windows timed passes over the batches;
  writes {"medians": [...]} (median step of each timed pass).
--mode parity: dropout off (eval mode; gradients still flow), the batches once with a
  2-step warm-up / 10-step linear schedule; writes the initial classifier (for the tfmask side
  to start from), the per-step losses, and saves the trained encoder with save_pretrained.
--mode epoch: the batches once at --dropout with the fine-tuning schedule (10% warm-up, linear
  decay over the batches), then scores --valid (first sub-word per word, 128 pieces); writes
  the initial classifier first and {"f1", "precision", "recall", "train_seconds"}.
--mode serve (finetune_speed.py): NER or sentiment (--task), the checkpoint's own dropout and
  attention implementation, fp32 or `torch.autocast("cpu", bfloat16)` (--autocast bf16); the
  fine-tuning schedule over the saved batches; then answers one JSON line per command read
  from stdin: `train FIRST END` (the steps on batches FIRST..END-1: seconds, per-step
  seconds), `eval` (the valid metric), `quit` (peak RSS); so that the caller can interleave
  its windows with other sides'.
All: torch AdamW (weight decay 0.01, none on LayerNorm/bias, eps 1e-6), global-norm clip
1.0, fp32 unless --autocast. Imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time

from _hf_common import (adamw, apply_gradients, import_tfmask_text, load_batches,
                        save_classifier)


def epoch(args, model, batches, step, optimizer, transformers, torch, np) -> dict:
    import_tfmask_text()
    from tfmask.text import readers  # pure Python: no TensorFlow import
    from tfmask.train import metrics

    save_classifier(model, os.path.join(args.out, "classifier_init.npz"), "weight")
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, max(1, len(batches) // 10), len(batches))
    model.train()
    start = time.perf_counter()
    for batch in batches:
        step(*batch)
        schedule.step()
    seconds = time.perf_counter() - start
    model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    valid = readers.read_conll(args.valid)
    labels = [str(t) for t in np.load(args.batches)["labels"]]
    predicted = _ner_predictions(model, tokenizer, valid, labels, torch)
    scores = metrics.entity_scores([s.tags for s in valid], predicted)
    return {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
            "train_seconds": seconds}


def _ner_predictions(model, tokenizer, sentences, labels, torch) -> list[list[str]]:
    """First sub-word's label of each word, 128 pieces (later words: "O")."""
    predicted = []
    with torch.no_grad():
        for first in range(0, len(sentences), 64):
            chunk = sentences[first:first + 64]
            enc = tokenizer([s.words for s in chunk], is_split_into_words=True, truncation=True,
                            max_length=128, padding=True, return_tensors="pt")
            best = model(input_ids=enc["input_ids"],
                         attention_mask=enc["attention_mask"]).logits.argmax(-1).numpy()
            for j, sentence in enumerate(chunk):
                tags, previous = ["O"] * len(sentence.words), None
                for position, word in enumerate(enc.word_ids(j)):
                    if word is not None and word != previous:
                        tags[word] = labels[best[j, position]]
                    previous = word
                predicted.append(tags)
    return predicted


def serve(args) -> None:
    """Loads the model and the batches, then answers commands from stdin (module docstring)."""
    import contextlib
    import resource
    import sys

    import numpy as np
    import torch
    import transformers

    import_tfmask_text()
    from tfmask.text import readers  # pure Python: no TensorFlow import
    from tfmask.train import metrics

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    z = np.load(args.batches)
    labels = [str(t) for t in z["labels"]]
    head = (transformers.BertForTokenClassification if args.task == "ner"
            else transformers.BertForSequenceClassification)
    model = head.from_pretrained(args.model, num_labels=len(labels))
    batches = load_batches(args.batches, ignore_unweighted=args.task == "ner")
    optimizer = adamw(model, args.learning_rate)
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, max(1, len(batches) // 10), len(batches))

    def autocast():
        return (torch.autocast("cpu", dtype=torch.bfloat16) if args.autocast == "bf16"
                else contextlib.nullcontext())

    def step(ids, mask, y) -> None:
        with autocast():
            loss = model(input_ids=ids, attention_mask=mask, labels=y).loss
        apply_gradients(loss, model, optimizer, schedule)

    def evaluate() -> dict:
        model.eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
        with autocast():
            if args.task == "ner":
                valid = readers.read_conll(args.valid)[:args.valid_examples or None]
                scores = metrics.entity_scores([s.tags for s in valid],
                                               _ner_predictions(model, tokenizer, valid,
                                                                labels, torch))
                result = {"f1": scores["f1"], "examples": len(valid)}
            else:
                texts = [str(t) for t in z["valid_texts"]]
                gold = z["valid_labels"]
                predicted = []
                with torch.no_grad():
                    for first in range(0, len(texts), 64):
                        enc = tokenizer(texts[first:first + 64], truncation=True,
                                        max_length=args.seq_len, padding=True,
                                        return_tensors="pt")
                        predicted += model(**enc).logits.argmax(-1).tolist()
                result = {"accuracy": float(np.mean(np.array(predicted) == gold)),
                          "examples": len(texts)}
        model.train()
        return result

    model.train()
    print(json.dumps({"ready": True, "torch": torch.__version__,
                      "transformers": transformers.__version__,
                      "attention": model.config._attn_implementation}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "train":
            times = []
            start = time.perf_counter()
            for batch in batches[int(command[1]):int(command[2])]:
                t0 = time.perf_counter()
                step(*batch)
                times.append(time.perf_counter() - t0)
            reply = {"seconds": time.perf_counter() - start, "step_seconds": times}
        elif command[0] == "eval":
            reply = evaluate()
        else:
            reply = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        print(json.dumps(reply), flush=True)
        if command[0] == "quit":
            return


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("--model", "--batches", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--mode", choices=["time", "parity", "epoch", "serve"], required=True)
    p.add_argument("--task", choices=["ner", "sentiment"], default="ner", help="serve mode")
    p.add_argument("--autocast", choices=["none", "bf16"], default="none", help="serve mode")
    p.add_argument("--learning-rate", type=float, default=1e-4, help="serve mode")
    p.add_argument("--seq-len", type=int, default=64, help="serve mode: sentiment's pieces")
    p.add_argument("--valid-examples", type=int, default=0, help="serve mode: 0 = all")
    p.add_argument("--dropout", type=float, default=0.0, help="epoch mode")
    p.add_argument("--valid", help="epoch mode: CoNLL file to score")
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if args.mode == "serve":
        return serve(args)

    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    z = np.load(args.batches)
    rates = {"hidden_dropout_prob": args.dropout, "attention_probs_dropout_prob": args.dropout} \
        if args.mode == "epoch" else {}
    model = transformers.BertForTokenClassification.from_pretrained(
        args.model, num_labels=int(z["num_labels"]), attn_implementation="eager", **rates)
    batches = load_batches(args.batches)
    optimizer = adamw(model, 1e-4)

    def step(ids, mask, labels) -> float:
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        return apply_gradients(loss, model, optimizer)

    if args.mode == "time":
        model.train()
        medians = []
        for window in range(args.windows + 1):
            times = []
            for batch in batches:
                start = time.perf_counter()
                step(*batch)
                times.append(time.perf_counter() - start)
            if window:  # pass 0 warms up
                medians.append(statistics.median(times))
            print(f"hf pass {window}: median step {statistics.median(times):.3f} s", flush=True)
        result = {"medians": medians}
    elif args.mode == "epoch":
        result = epoch(args, model, batches, step, optimizer, transformers, torch, np)
    else:
        model.eval()  # no dropout: both sides must compute the same function
        save_classifier(model, os.path.join(args.out, "classifier_init.npz"), "weight")
        schedule = transformers.get_linear_schedule_with_warmup(optimizer, 2, 10)
        losses = []
        for batch in batches:
            losses.append(step(*batch))
            schedule.step()
        trained = os.path.join(args.out, "hf_trained")
        model.save_pretrained(trained)
        shutil.copy(os.path.join(args.model, "vocab.txt"), trained)
        save_classifier(model, os.path.join(args.out, "classifier_trained.npz"), "weight")
        result = {"losses": losses}
    result.update(torch=torch.__version__, transformers=transformers.__version__)
    with open(os.path.join(args.out, f"hf_{args.mode}.json"), "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
