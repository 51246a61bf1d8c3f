"""Checkpoints in and out of tfmask: Hugging Face, google-research/bert and keras-hub.

One module per format reads that format into one canonical form, the variable names and
layouts of the original google-research/bert checkpoints; the writers (tfmask -> Hugging Face,
keras-hub) sit beside their readers and read the same tables the other way:

    canonical.py    `Checkpoint`, `CheckpointError`, the canonical -> `BertEncoder` /
                    `MaskedLM` table, `build_models`, and `to_canonical` (the way out)
    huggingface.py  Hugging Face folders (safetensors or pytorch_model.bin) and hf://ORG/NAME;
                    `write_huggingface`
    google_bert.py  original google-research/bert TensorFlow checkpoints
    keras_hub.py    keras-hub presets (a saved folder or a preset name); `write_keras_hub`
    importing.py    `read_checkpoint` (which reader a source needs) and `import_checkpoint`
                    (a source -> a tfmask run directory usable as `--init`)
    export_plan.py  which head an export writes, from the run's files (no TensorFlow)
    exporting.py    `export_weights` (a run -> a Hugging Face folder or a keras-hub preset,
                    read back and checked before it is published)

The names below load their module when first used, so `tfmask.interop.export_plan` can be
imported without TensorFlow (the command line checks its arguments with it).

Example:

    from tfmask.interop import build_models, read_checkpoint

    checkpoint = read_checkpoint("hf://sentence-transformers/all-MiniLM-L6-v2")
    encoder, masked_lm, report = build_models(checkpoint)  # masked_lm: None without MLM head
"""

import importlib

#: Public name -> the module that defines it.
_EXPORTS = {"Checkpoint": "canonical", "CheckpointError": "canonical",
            "build_models": "canonical", "import_checkpoint": "importing",
            "read_checkpoint": "importing", "export_weights": "exporting"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"tfmask.interop.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tfmask.interop' has no attribute {name!r}")
