"""`tfmask predict`: call an exported model's `serve_text` on raw texts, as a server would.

Loads the SavedModel with `tf.saved_model.load` and imports nothing but `tensorflow` and
`tensorflow_text` (which registers the tokenizer ops), so it proves an export needs neither
tfmask nor Keras at serving time. One JSON object per input text:

    sentiment  {"text", "label", "label_id", "probabilities": {label: p}}
    classify   the same, and "text_pair" for a sentence-pair model
    ner        {"text", "words", "tags", "entities": [{"text", "type", "start", "end"}]}
    fill_mask  {"text", "masks": [[{"token", "probability"}, ...top k], ...one per [MASK]]}

With `rest=True` it prints instead the body that TF Serving's REST API returns for the same
texts in one row-format request (`{"instances": [...]}` -> `{"predictions": [...]}`): every
`serve_text` output of each row, strings decoded, floats at float32 precision.

A sentence-pair model (its `serve_text` takes `text` and `text_pair`) reads each input as
`TEXT<TAB>TEXT_PAIR`: the first tab separates the two texts (`$'a man sleeps\\tnobody sleeps'`
in bash, one such line a pair in `--file`).
"""

from __future__ import annotations

import json
import os


def resolve_version(path: str) -> str:
    """`saved_models/NAME` -> its highest version folder; a version folder is kept."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such export")
    versions = sorted((int(n) for n in os.listdir(path) if n.isdigit()))
    if not versions:
        raise FileNotFoundError(f"{path}: no version folder (an export is NAME/1/, NAME/2/...)")
    return os.path.join(path, str(versions[-1]))


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def records(outputs: dict, texts: list[str], label_names: list[str] | None = None
            ) -> list[dict]:
    """`serve_text` outputs (NumPy) -> one JSON-able dict per input text; `label_names` (the
    export's assets/labels.txt) key the sentiment probabilities."""
    out = []
    for i, text in enumerate(texts):
        if "label" in outputs:
            names = label_names
            probabilities = outputs["probabilities"][i].tolist()
            pair = {}
            if isinstance(text, tuple):  # a sentence pair
                text, pair = text[0], {"text_pair": text[1]}
            out.append({"text": text, **pair, "label": _text(outputs["label"][i]),
                        "label_id": int(outputs["label_id"][i]),
                        "probabilities": dict(zip(names, probabilities)) if names
                        else probabilities})
        elif "tags" in outputs:
            n, e = int(outputs["num_words"][i]), int(outputs["num_entities"][i])
            out.append({
                "text": text,
                "words": [_text(w) for w in outputs["words"][i][:n]],
                "tags": [_text(t) for t in outputs["tags"][i][:n]],
                "entities": [{"text": _text(outputs["entity_text"][i][j]),
                              "type": _text(outputs["entity_type"][i][j]),
                              "start": int(outputs["entity_start"][i][j]),
                              "end": int(outputs["entity_end"][i][j])} for j in range(e)]})
        else:
            masks = []
            for p in range(int(outputs["num_masks"][i])):
                masks.append([{"token": _text(tok), "probability": float(prob)}
                              for tok, prob in zip(outputs["tokens"][i][p],
                                                   outputs["probabilities"][i][p])])
            out.append({"text": text, "masks": masks})
    return out


def _rest_value(value):
    """One output row as TF Serving's REST JSON writes it."""
    if getattr(value, "ndim", 0):
        return [_rest_value(v) for v in value]
    if isinstance(value, bytes):
        return _text(value)
    if value.dtype.kind == "f":
        return float(f"{value:.9g}")  # float32's 9 significant digits, not float64's 17
    return value.item()


def rest_predictions(outputs: dict) -> dict:
    """`serve_text` outputs (NumPy, batch B) -> TF Serving's row-format REST response."""
    rows = len(next(iter(outputs.values())))
    return {"predictions": [{name: _rest_value(outputs[name][i]) for name in sorted(outputs)}
                            for i in range(rows)]}


def _serve_text(export_path: str):
    """(the loaded SavedModel, its `serve_text` signature, the label names in its assets or
    None). Keep the model referenced while the signature is used: it owns the variables."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the tokenizer ops the graph uses

    directory = resolve_version(export_path)
    model = tf.saved_model.load(directory)
    if "serve_text" not in model.signatures:
        raise ValueError(f"{directory}: no serve_text signature (is this the NAME-ids export? "
                         "predict needs the strings-in export saved_models/NAME)")
    serve_text = model.signatures["serve_text"]
    label_names = None
    labels_path = os.path.join(directory, "assets", "labels.txt")
    if os.path.exists(labels_path):
        with open(labels_path, encoding="utf-8") as fh:
            label_names = [line.rstrip("\n") for line in fh if line.strip()]
    return model, serve_text, label_names


def takes_pairs(serve_text) -> bool:
    """Whether a `serve_text` signature takes sentence pairs (`text` and `text_pair`)."""
    return "text_pair" in serve_text.structured_input_signature[1]


def split_pairs(texts: list[str]) -> list[tuple[str, str]]:
    """`TEXT<TAB>TEXT_PAIR` strings -> `(text, text_pair)` tuples (split at the first tab)."""
    pairs = []
    for i, text in enumerate(texts, start=1):
        if "\t" not in text:
            raise ValueError(f"text {i} ({text[:40]!r}) has no tab: this model classifies "
                             "sentence pairs, give each as TEXT<TAB>TEXT_PAIR")
        first, second = text.split("\t", 1)
        pairs.append((first, second))
    return pairs


def _outputs(serve_text, texts: list) -> dict:
    """`serve_text` on `texts`: strings, or `(text, text_pair)` tuples for a pair model."""
    import tensorflow as tf

    if texts and isinstance(texts[0], tuple):
        inputs = {"text": tf.constant([a for a, _ in texts], tf.string),
                  "text_pair": tf.constant([b for _, b in texts], tf.string)}
    else:
        inputs = {"text": tf.constant(texts, tf.string)}
    return {k: v.numpy() for k, v in serve_text(**inputs).items()}


def predict(export_path: str, texts: list[str], batch_size: int = 64) -> list[dict]:
    """Runs `serve_text` of an export on `texts` in batches; returns `records`. A pair
    model's texts are `TEXT<TAB>TEXT_PAIR` strings or `(text, text_pair)` tuples."""
    _model, serve_text, label_names = _serve_text(export_path)
    if takes_pairs(serve_text) and texts and not isinstance(texts[0], tuple):
        texts = split_pairs(texts)
    results = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        results += records(_outputs(serve_text, chunk), chunk, label_names)
    return results


def main(export_path: str, texts: list[str], file: str | None = None, rest: bool = False
         ) -> int:
    if file:
        from tfmask.text.text_files import read_lines  # plain Python, no TensorFlow

        lines = read_lines(file)  # a byte that is not UTF-8: `file:line:` and its offset
        if not lines:
            raise ValueError(f"--file {file}: empty file (one text a line expected)")
        texts = texts + lines
    if not texts:
        raise ValueError("give texts to predict, or --file FILE (one text a line)")
    if rest:
        _model, serve_text, _ = _serve_text(export_path)
        if takes_pairs(serve_text):
            texts = split_pairs(texts)
        print(json.dumps(rest_predictions(_outputs(serve_text, texts)), ensure_ascii=False))
        return 0
    for record in predict(export_path, texts):
        print(json.dumps(record, ensure_ascii=False))
    return 0
