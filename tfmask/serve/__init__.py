"""Serving: SavedModels that TensorFlow Serving loads as they are.

    export    `export(run_dir, name)`: `serve` (ids in) and `serve_text` (strings in,
              tokenization in the graph), versioned under `saved_models/NAME/N/`
    audit     which ops each signature needs, checked against TF Serving's runtime
    warmup    the `assets.extra/tf_serving_warmup_requests` file
    predict   `tfmask predict`: call an export's `serve_text` (TensorFlow and
              tensorflow-text only)
    predictor `load_predictor(run_dir)`: a run's `serve_text` called in-process, no export

Nothing here imports training code.
"""
