"""The HF side of finetune_step_time.py: BertForTokenClassification on the saved batches.

Same protocol as the tfmask side: one untimed pass, then timed passes; torch AdamW (weight
decay 0.01 off LayerNorm/bias, eps 1e-6), global-norm clip 1.0, dropout 0.1, fp32. Writes
{"medians": [...]} to --out. Imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("--model", "--batches", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    z = np.load(args.batches)
    model = transformers.BertForTokenClassification.from_pretrained(
        args.model, num_labels=int(z["num_labels"]))
    model.train()
    batches = []
    for i in range(sum(1 for k in z.files if k.startswith("ids"))):
        labels = z[f"y{i}"].astype("int64")
        labels[z[f"w{i}"] == 0] = -100
        batches.append((torch.tensor(z[f"ids{i}"].astype("int64")),
                        torch.tensor(z[f"mask{i}"].astype("int64")), torch.tensor(labels)))
    no_decay = ("bias", "LayerNorm.weight")
    named = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in named if not any(k in n for k in no_decay)],
          "weight_decay": 0.01},
         {"params": [p for n, p in named if any(k in n for k in no_decay)],
          "weight_decay": 0.0}], lr=1e-4, eps=1e-6)
    medians = []
    for window in range(args.windows + 1):
        steps = []
        for ids, mask, labels in batches:
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            steps.append(time.perf_counter() - start)
        if window:
            medians.append(statistics.median(steps))
        print(f"hf pass {window}: median step {statistics.median(steps):.3f} s", flush=True)
    with open(args.out, "w") as fh:
        json.dump({"medians": medians, "torch": torch.__version__,
                   "transformers": transformers.__version__}, fh)


if __name__ == "__main__":
    main()
