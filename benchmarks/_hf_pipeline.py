"""The Hugging Face side of pipeline_throughput.py: tokenization + MLM collation, served.

Run in a Python with torch and transformers (imports no TensorFlow and no tfmask):

    _hf_pipeline.py --lines LINES.txt --vocab vocab.txt --seq-len 128 --batch-size 32 ...

What a `Trainer` user's input pipeline does per batch, in this process (Trainer's default
`dataloader_num_workers=0`): `BertTokenizerFast` (Rust) on the batch's lines, truncated to
`--seq-len` pieces with `[CLS]`/`[SEP]`, one line per sequence; the rows as a list of dicts (what
a dataset hands a collator); then `DataCollatorForLanguageModeling` (torch): padding to the
batch's longest row (`--padding longest`, HF's default) or to `--seq-len`, and masking
(`--mlm-probability`, 80% [MASK] / 10% random / 10% kept). Side `whole_word`: the same with
whole-word masking. transformers 5 has no `DataCollatorForWholeWordMask`: its successor is
`DataCollatorForLanguageModeling(whole_word_mask=True)`, which finds words from the offset
mapping (the tokenizer pads the batch, so that the offsets stack), draws word starts with
`mlm_probability`, masks every piece of a drawn word, and always writes [MASK] (it forces
`mask_replace_prob=1`). Older transformers: `DataCollatorForWholeWordMask` (words from "##").

Lines: `--lines`, one a line ("\\n"), the order the caller wrote; each side walks them
cyclically from the first. Answers one JSON line on stdout per command read from stdin:
`run SIDE SETTLE N` (SIDE: lm or whole_word; SETTLE untimed batches, then N timed: seconds,
sequences, tokens (attention-mask ones), masked (labels != -100)), `quit`. The first line it
writes says what it built (versions, vocabulary size, collator classes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def read_lines(path: str) -> list[str]:
    """The lines of `path` split on "\\n" alone (plain Python: pipeline_throughput.py's keras-hub
    worker reads them with it too, so that both anchors see the same strings)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read().split("\n")


class Side:
    """One collator over the lines, with its cursor."""

    def __init__(self, args, tokenizer, lines: list[str], whole_word: bool):
        import transformers

        self.tokenizer, self.lines, self.args = tokenizer, lines, args
        self.whole_word, self.cursor = whole_word, 0
        common = {"mlm_probability": args.mlm_probability, "seed": args.seed}
        lm = transformers.DataCollatorForLanguageModeling
        if not whole_word:
            self.collator = lm(tokenizer, **common)
            self.offsets = False
        elif "whole_word_mask" in getattr(lm, "__dataclass_fields__", {}):
            self.collator = lm(tokenizer, whole_word_mask=True, **common)
            self.offsets = True  # its word boundaries come from the offset mapping
        else:
            common.pop("seed")  # transformers 4's whole-word collator takes no seed
            self.collator = transformers.DataCollatorForWholeWordMask(tokenizer, **common)
            self.offsets = False
        # The offsets of a batch only stack once the tokenizer has padded it.
        self.padding = ("max_length" if args.padding == "max_length"
                        else "longest" if self.offsets else False)

    def describe(self) -> dict:
        c = self.collator
        return {"collator": type(c).__name__,
                "whole_word_mask": bool(getattr(c, "whole_word_mask", self.whole_word)),
                "mlm_probability": c.mlm_probability,
                "mask_replace_prob": getattr(c, "mask_replace_prob", 0.8),
                "random_replace_prob": getattr(c, "random_replace_prob", 0.1),
                "padded_by": "tokenizer" if self.padding else "collator",
                "padding": self.args.padding, "max_predictions": None}

    def batch(self):
        """The next batch of lines, tokenized and collated."""
        n = self.args.batch_size
        texts = [self.lines[(self.cursor + i) % len(self.lines)] for i in range(n)]
        self.cursor = (self.cursor + n) % len(self.lines)
        enc = self.tokenizer(texts, truncation=True, max_length=self.args.seq_len,
                             padding=self.padding, return_special_tokens_mask=True,
                             return_offsets_mapping=self.offsets)
        rows = [{k: enc[k][i] for k in enc.keys()} for i in range(n)]
        return self.collator(rows)

    def run(self, settle: int, count: int) -> dict:
        for _ in range(settle):
            self.batch()
        sequences = tokens = masked = 0
        start = time.perf_counter()
        for _ in range(count):
            out = self.batch()
            sequences += int(out["input_ids"].shape[0])
            tokens += int(out["attention_mask"].sum())
            masked += int((out["labels"] != -100).sum())
        return {"seconds": time.perf_counter() - start, "sequences": sequences,
                "tokens": tokens, "masked": masked}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lines", required=True, help="text, one line a line")
    p.add_argument("--vocab", required=True, help="vocab.txt")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--mlm-probability", type=float, default=0.15)
    p.add_argument("--padding", choices=["longest", "max_length"], default="longest")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    # transformers 5 reads `vocab`; its `vocab_file` argument is silently ignored (a tokenizer
    # of the 5 special tokens alone), so pass the file by the name each major version reads.
    key = "vocab" if int(transformers.__version__.split(".")[0]) >= 5 else "vocab_file"
    tokenizer = transformers.BertTokenizerFast(**{key: args.vocab}, do_lower_case=True)
    with open(args.vocab, encoding="utf-8") as fh:
        expected = sum(1 for _ in fh)
    if len(tokenizer) != expected:
        raise SystemExit(f"the HF tokenizer has {len(tokenizer)} tokens, {args.vocab} "
                         f"{expected}")
    lines = read_lines(args.lines)
    sides = {"lm": Side(args, tokenizer, lines, False),
             "whole_word": Side(args, tokenizer, lines, True)}
    print(json.dumps({"ready": True, "torch": torch.__version__,
                      "transformers": transformers.__version__,
                      "tokenizer": type(tokenizer).__name__, "is_fast": tokenizer.is_fast,
                      "vocabulary_size": len(tokenizer), "lines": len(lines),
                      "torch_threads": torch.get_num_threads(),
                      "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM",
                                                               "default (on)"),
                      "sides": {name: side.describe() for name, side in sides.items()}}),
          flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            return
        name, settle, count = command[1], int(command[2]), int(command[3])
        print(json.dumps(sides[name].run(settle, count)), flush=True)


if __name__ == "__main__":
    main()
