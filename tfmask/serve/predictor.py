"""`load_predictor(run_dir)`: call a run on strings from Python, without exporting it.

The predictor holds the run's `export.TextModule`, the very module `tfmask export` saves, and
calls its `serve_text` function in this process: the same in-graph tokenization, packing,
NER windows and entity reading, so its answers are those of the exported model (tested
equal). It works for fine-tuned sentiment, classify and NER runs and for pretraining runs (or
imports with an MLM head: fill-mask), exported or not. A sentence-pair run takes
`(text, text_pair)` tuples (or `TEXT<TAB>TEXT_PAIR` strings, as `tfmask predict`).

    predictor = load_predictor("runs/ner")
    predictor(["Peter Blackburn visited Brussels ."])
    # [{"text": ..., "words": [...], "tags": [...],
    #   "entities": [{"text": "Peter Blackburn", "type": "PER", "start": 0, "end": 15}, ...]}]
    predictor.outputs(["..."])  # the serve_text outputs themselves: {name: np.ndarray}

Records per kind (those `tfmask predict` prints for an export):

    sentiment  {"text", "label", "label_id", "probabilities": {label: p}}
    classify   the same, and "text_pair" for a sentence-pair run
    ner        {"text", "words", "tags", "entities": [{"text", "type", "start", "end"}]}
    fill_mask  {"text", "masks": [[{"token", "probability"}, ...top k], ...one per [MASK]]}
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfmask.serve import export, predict


class Predictor:
    """A run's `serve_text`, callable on a list of strings.

    Args:
      run_dir: a fine-tuning run (`model.keras`), a pretraining run or an import with an MLM
        head (`masked_lm.keras`).
      batch_size: texts per call of the graph.
      top_k: fill-mask: candidates per `[MASK]`.

    Attributes:
      kind: "sentiment", "classify", "ner" or "fill_mask".
      labels: label names (index = id); [] for fill-mask.
      pair: whether the run classifies sentence pairs.
    """

    def __init__(self, run_dir: str, batch_size: int = 64, top_k: int = export.TOP_K):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.run_dir = run_dir
        self.batch_size = int(batch_size)
        self.module = export.load_text_module(run_dir, top_k)
        self.kind = self.module.kind
        self.pair = self.module.pair
        self.labels = ([s.decode("utf-8") for s in self.module.labels.numpy()]
                       if self.kind != "fill_mask" else [])

    def outputs(self, texts: list) -> dict[str, np.ndarray]:
        """`serve_text`'s outputs for `texts` (one call of the graph per `batch_size` texts,
        joined; string outputs are bytes, padded as the signature pads them)."""
        texts = self._inputs(texts)
        parts = [self._serve_text(texts[i:i + self.batch_size])
                 for i in range(0, max(len(texts), 1), self.batch_size)]
        return {k: _concatenate([p[k] for p in parts]) for k in parts[0]}

    def __call__(self, texts: list) -> list[dict]:
        """One record per text (see the module docstring)."""
        texts = self._inputs(texts)
        return predict.records(self.outputs(texts), texts, self.labels or None)

    def _inputs(self, texts) -> list:
        if isinstance(texts, (str, bytes)):
            raise TypeError("give a list of texts, e.g. predictor([\"a text\"]), not one "
                            "string")
        texts = list(texts)
        if self.pair and texts and not isinstance(texts[0], tuple):
            texts = predict.split_pairs(texts)
        return texts

    def _serve_text(self, chunk: list) -> dict[str, np.ndarray]:
        if self.pair:
            inputs = {"text": [a for a, _ in chunk], "text_pair": [b for _, b in chunk]}
        else:
            inputs = {"text": chunk}
        out = self.module.serve_text(**{k: tf.constant(v, tf.string, shape=[len(v)])
                                        for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}

    def __repr__(self) -> str:
        return f"Predictor({self.run_dir!r}, kind={self.kind!r})"


def _concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    """Batches joined on axis 0, each padded like the signature pads (to the widest batch):
    strings with b"", token ids and offsets with -1 (as `serve_text`), floats with 0."""
    if len(arrays) == 1:
        return arrays[0]
    ndim = arrays[0].ndim
    widths = [max(a.shape[d] for a in arrays) for d in range(1, ndim)]
    padded = []
    for a in arrays:
        pad = [(0, 0)] + [(0, w - a.shape[d + 1]) for d, w in enumerate(widths)]
        fill = b"" if a.dtype.kind in "SO" else (-1 if a.dtype.kind == "i" else 0)
        padded.append(np.pad(a, pad, constant_values=fill) if any(p[1] for p in pad) else a)
    return np.concatenate(padded, axis=0)


def load_predictor(run_dir: str, batch_size: int = 64, top_k: int = export.TOP_K
                   ) -> Predictor:
    """A `Predictor` for `run_dir`: `load_predictor("runs/ner")(["text", ...])`."""
    return Predictor(run_dir, batch_size=batch_size, top_k=top_k)
