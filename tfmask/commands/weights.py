"""`tfmask export-weights`: a run's weights as a Hugging Face folder or a keras-hub preset."""

from __future__ import annotations

import json
import os

from tfmask.commands import add_common
from tfmask.interop import export_plan


def _add_export_weights_parser(sub) -> None:
    p = sub.add_parser(
        "export-weights", help="write a run's weights for Hugging Face transformers or "
                               "keras-hub",
        description="Write a finished run (pretrain, import or finetune) as a Hugging Face "
                    "folder (config.json, model.safetensors, vocab.txt, "
                    "tokenizer_config.json: BertModel, BertForMaskedLM, "
                    "BertForTokenClassification or BertForSequenceClassification with "
                    "id2label) or a keras-hub preset (BertBackbone, BertTokenizer, and "
                    "BertTextClassifier for sentence classifiers). The folder is read back "
                    "with tfmask's importer before it is published: every tensor must come "
                    "back bit-identical.")
    add_common(p)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--format", required=True, choices=export_plan.FORMATS,
                   help="hf (Hugging Face transformers) or keras-hub")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    p.add_argument("--head", choices=export_plan.HEADS, default="auto",
                   help="auto: the run's own head (MLM head of a pretraining run, classifier "
                        "of a fine-tuned one); none: the encoder only; masked_lm or "
                        "classifier: ask for it, an error when the run has none (default: "
                        "%(default)s)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")


def _check_export_weights(args) -> str:
    head = export_plan.resolve_head(args.run, args.format, args.head)
    export_plan.check_out(args.out, args.force)
    return head


def _run_export_weights(args, _) -> int:
    from tfmask.interop import export_weights

    report = export_weights(args.run, args.format, args.out, head=args.head,
                            overwrite=args.force)
    out = os.path.abspath(args.out)
    print(f"Wrote {args.run} to {out}/ ({args.format}): loads as "
          f"{', '.join(report['classes'])}.")
    print(f"  read back with tfmask's importer: {report['tensors']} tensors bit-identical")
    activation = report["activation"]
    if args.format == "hf":
        print(f"  GELU: the run's {activation['run']} is hidden_act "
              f"{activation['hidden_act']!r} in config.json")
    else:
        parity = report["parity"]
        print(f"  keras-hub BertBackbone vs the tfmask encoder on {parity['texts']} sentences: "
              f"max |difference| {parity['max_abs_difference']:.2e} (the run's "
              f"{parity['run_activation']}); {parity['max_abs_difference_tanh_gelu']:.2e} "
              "with the tanh GELU keras-hub computes")
        same = parity["same_token_ids"]
        print(f"  keras-hub's BertTokenizer gives tfmask's ids on {sum(same)} of {len(same)} "
              "of those sentences")
    for note in report["notes"]:
        print(f"  note: {note}")
    print(json.dumps({k: report[k] for k in ("format", "out", "head", "classes", "tensors")}))
    return 0


COMMANDS = {"export-weights": (_add_export_weights_parser, _check_export_weights,
                               _run_export_weights)}
