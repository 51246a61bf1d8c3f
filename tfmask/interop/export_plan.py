"""What `tfmask export-weights` writes for a run, decided from its files alone (no TensorFlow),
so the command line refuses an impossible request at once.

    run                            --head auto  hf                             keras-hub
    finetune ner                   classifier   BertForTokenClassification     BertBackbone (a)
    finetune sentiment, classify   classifier   BertForSequenceClassification  BertTextClassifier
    pretrain, import + MLM head    masked_lm    BertForMaskedLM                BertBackbone (b)
    import without MLM head        none         BertModel                      BertBackbone

    (a) keras-hub has no token-classification task; (b) its MLM head is not written.

`--head none` writes the encoder alone (`BertModel`, `BertBackbone`) from any run.
"""

from __future__ import annotations

import json
import os

FORMATS = ("hf", "keras-hub")
HEADS = ("auto", "none", "masked_lm", "classifier")


class ExportPlanError(ValueError):
    """A run that lacks what was asked for, or an output folder in the way; one line."""


def resolve_head(run_dir: str, fmt: str, head: str = "auto") -> str:
    """The head written: "none", "masked_lm", "token_classification" or
    "sequence_classification".

    Raises:
      ExportPlanError: an unknown format or head, a run directory that is not one, a head
        the run does not have (`masked_lm` without `masked_lm.keras`, `classifier` without a
        fine-tuned `model.keras`), or one the format has no class for.
    """
    if fmt not in FORMATS:
        raise ExportPlanError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    if head not in HEADS:
        raise ExportPlanError(f"--head {head!r}: one of {', '.join(HEADS)}")
    if not os.path.isdir(run_dir):
        raise ExportPlanError(f"{run_dir}: no such run directory")

    def has(name):
        return os.path.exists(os.path.join(run_dir, name))

    if has("model.keras"):
        with open(os.path.join(run_dir, "config.json")) as fh:
            task = json.load(fh).get("task")
        own = "token_classification" if task == "ner" else "sequence_classification"
    elif has("encoder.keras"):
        own = "masked_lm" if has("masked_lm.keras") else "none"
    else:
        raise ExportPlanError(f"{run_dir}: no model.keras or encoder.keras (not a finished "
                              "tfmask finetune, pretrain or import run?)")
    if head == "masked_lm" and own != "masked_lm":
        raise ExportPlanError(f"{run_dir} has no MLM head (no masked_lm.keras), so it cannot "
                              "be written as BertForMaskedLM; --head none writes the encoder")
    if head == "classifier" and own not in ("token_classification", "sequence_classification"):
        raise ExportPlanError(f"{run_dir} is not a fine-tuned run (no model.keras): no "
                              "classifier to write; --head none writes the encoder")
    chosen = own if head == "auto" else "none" if head == "none" else own
    if fmt == "keras-hub" and head != "auto":
        if chosen == "masked_lm":
            raise ExportPlanError("keras-hub: the MLM head is not written (BertMaskedLM's head "
                                  "uses LayerNorm epsilon 1e-5, not BERT's 1e-12); --head none "
                                  "writes the backbone")
        if chosen == "token_classification":
            raise ExportPlanError("keras-hub has no token-classification task; --head none "
                                  "writes the backbone")
    if fmt == "keras-hub" and chosen in ("masked_lm", "token_classification"):
        return "none"  # auto: the backbone (the export's notes say why)
    return chosen


def check_out(out: str, overwrite: bool = False) -> None:
    """Refuses an output folder that exists (unless `overwrite`) or a file in its place."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ExportPlanError(f"--out {out}: a file is in the way")
    if os.path.exists(out) and not overwrite:
        raise ExportPlanError(f"--out {out} exists; choose a new folder or pass --force to "
                              "replace it")
