"""Checkpoints in and out of tfmask: Hugging Face, google-research/bert and keras-hub.

One module per format reads that format into one canonical form, the variable names and
layouts of the original google-research/bert checkpoints; writers for the same formats
(tfmask -> Hugging Face, google-research/bert, keras-hub) belong beside their readers:

    canonical.py    `Checkpoint`, `CheckpointError`, the canonical -> `BertEncoder` /
                    `MaskedLM` table, `build_models`
    huggingface.py  Hugging Face folders (safetensors or pytorch_model.bin) and hf://ORG/NAME
    google_bert.py  original google-research/bert TensorFlow checkpoints
    keras_hub.py    keras-hub presets (a saved folder or a preset name)
    importing.py    `read_checkpoint` (which reader a source needs) and `import_checkpoint`
                    (a source -> a tfmask run directory usable as `--init`)

Example:

    from tfmask.interop import build_models, read_checkpoint

    checkpoint = read_checkpoint("hf://sentence-transformers/all-MiniLM-L6-v2")
    encoder, masked_lm, report = build_models(checkpoint)  # masked_lm: None without MLM head
"""

from tfmask.interop.canonical import Checkpoint, CheckpointError, build_models
from tfmask.interop.importing import import_checkpoint, read_checkpoint

__all__ = ["Checkpoint", "CheckpointError", "build_models", "import_checkpoint",
           "read_checkpoint"]
