"""`tfmask import`: a published checkpoint into a run directory."""

from __future__ import annotations

import os

from tfmask.commands import add_common, check_out

def _add_import_parser(sub) -> None:
    p = sub.add_parser(
        "import", help="import a pretrained BERT checkpoint into a run directory",
        description="Turn a published BERT checkpoint into a tfmask run directory (encoder, "
                    "vocab.txt, casing, config.json) usable as --init for fine-tuning and by "
                    "export. SOURCE: a Hugging Face folder (config.json + model.safetensors "
                    "or pytorch_model.bin, vocab.txt), a google-research/bert folder "
                    "(bert_config.json, bert_model.ckpt.*, vocab.txt), a keras-hub preset "
                    "folder or name, or hf://ORG/NAME (downloads; needs network).")
    add_common(p)
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    case = p.add_mutually_exclusive_group()
    case.add_argument("--uncased", dest="lower_case", action="store_const", const=True,
                      help="override the casing the source declares (or that is inferred)")
    case.add_argument("--cased", dest="lower_case", action="store_const", const=False)
    p.add_argument("--activation", choices=["gelu", "gelu_approximate"],
                   help="override the source's GELU form (default: the source's own)")
    p.add_argument("--allow-unknown", action="store_true",
                   help="import even when the source holds tensors tfmask does not know "
                        "(they are listed in import_report.json)")
    p.add_argument("--force", action="store_true", help="replace an encoder already in --out")


def _run_import(args, _) -> int:
    from tfmask.interop import import_checkpoint

    report = import_checkpoint(args.source, args.out, strict=not args.allow_unknown,
                               lower_case=args.lower_case, activation=args.activation,
                               overwrite=args.force)
    encoder = report["encoder"]
    print(f"Imported {report['imported']} tensors from {report['source']} "
          f"({report['format']}): {encoder['num_layers']} layers, hidden {encoder['hidden_dim']}"
          f", {encoder['num_heads']} heads, vocabulary {encoder['vocabulary_size']}, "
          f"{'uncased' if report['lower_case'] else 'cased'}, activation "
          f"{encoder['activation']}, MLM head: {'yes' if report['masked_lm_head'] else 'no'}.")
    for name, why in report["skipped"].items():
        print(f"  skipped {name}: {why}")
    for name in report["initialized_randomly"]:
        print(f"  not in the checkpoint, initialised randomly: {name}")
    for name in report["unknown"]:
        print(f"  unknown, not imported: {name}")
    for note in report["notes"]:
        print(f"  note: {note}")
    out = os.path.abspath(args.out)
    print(f"\nDone. {out}/ holds encoder.keras, vocab.txt, config.json"
          + (", masked_lm.keras" if report["masked_lm_head"] else "")
          + " and import_report.json.")
    return 0


COMMANDS = {"import": (_add_import_parser, lambda args: check_out(args.out), _run_import)}
