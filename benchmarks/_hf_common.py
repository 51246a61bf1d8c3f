"""What the Hugging Face (PyTorch) sides of the benchmarks share.

These modules run in a separate Python that has torch and transformers (`--hf-python`,
`TFMASK_HF_PYTHON`): torch and TensorFlow in one process crash. So this module imports neither
TensorFlow nor tfmask, and torch only inside the functions that use it (dropout_audit.py, on the
TensorFlow side, imports `_hf_dropout` for its NumPy statistics).

- `load_batches`: the batches a TensorFlow side saved (.npz) as torch tensors, with HF's
  ignore index where tfmask's sample weight is 0;
- `adamw`, `apply_gradients`: the fine-tuning optimizer of every HF anchor (torch AdamW with
  weight decay 0.01 except on biases and LayerNorm weights, eps 1e-6; global-norm clip 1.0);
- `save_classifier`: the classification layer's weights for the TensorFlow side to copy.
"""

from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IGNORE_INDEX = -100  # what HF's losses skip
NO_DECAY = ("bias", "LayerNorm.weight")


def import_tfmask_text() -> None:
    """Makes the repository importable, for tfmask's pure-Python modules (readers, labels,
    metrics), which import no TensorFlow."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)


def load_batches(path: str, ignore_unweighted: bool = True) -> list[tuple]:
    """The batches of a .npz (`count`; `ids{i}`, `mask{i}`, `y{i}`, `w{i}` per batch) as
    `(input_ids, attention_mask, labels)` int64 torch tensors, in order.

    With `ignore_unweighted` (token labels), a label whose sample weight is 0 (a later
    sub-word, [CLS], [SEP], padding) becomes `IGNORE_INDEX`, so HF's loss averages over the
    same positions as tfmask's.
    """
    import torch

    z = np.load(path)
    batches = []
    for i in range(int(z["count"])):
        labels = z[f"y{i}"].astype("int64")
        if ignore_unweighted:
            labels[z[f"w{i}"] == 0] = IGNORE_INDEX
        batches.append((torch.tensor(z[f"ids{i}"].astype("int64")),
                        torch.tensor(z[f"mask{i}"].astype("int64")), torch.tensor(labels)))
    return batches


def adamw(model, learning_rate: float, weight_decay: float = 0.01, eps: float = 1e-6):
    """torch AdamW over `model`'s parameters, with no weight decay on biases and LayerNorm
    weights (as BERT fine-tunes, and as tfmask's optimizer excludes them)."""
    import torch

    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if any(k in name for k in NO_DECAY) else decay).append(parameter)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=learning_rate, eps=eps)


def apply_gradients(loss, model, optimizer, schedule=None, clip_norm: float = 1.0) -> float:
    """One update from `loss`: backward, global-norm clip, optimizer (and schedule) step,
    gradients cleared. Returns the loss as a float."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    if schedule is not None:
        schedule.step()
    optimizer.zero_grad()
    return float(loss.detach())


def save_classifier(model, path: str, layout: str) -> None:
    """The `model.classifier` Linear layer's weights -> .npz: `layout="kernel"` writes Keras's
    `kernel` [in, out] and `bias`; `layout="weight"` torch's `weight` [out, in] and `bias`."""
    weight = model.classifier.weight.detach().numpy()
    bias = model.classifier.bias.detach().numpy()
    if layout == "kernel":
        np.savez(path, kernel=weight.T, bias=bias)
    elif layout == "weight":
        np.savez(path, weight=weight, bias=bias)
    else:
        raise ValueError(f"layout {layout!r}: 'kernel' or 'weight'")
