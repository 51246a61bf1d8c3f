"""tfmask: BERT-style masked-language-model pretraining and fine-tuning, the TensorFlow way.

One subpackage per concern; arrows only point down this list:

    tfmask.cli        the command line: the only module that reads argv or the environment
    tfmask.serve      SavedModel export for TF Serving (`serve`, `serve_text`), op audit,
                      warm-up requests, `predict` on an export, `load_predictor` on a run
    tfmask.train      optimizer and strategy, callbacks, `pretrain`, `finetune`, evaluation,
                      metrics, plots
    tfmask.interop    checkpoints in (Hugging Face, google-research/bert, keras-hub) and out
                      (Hugging Face, keras-hub)
    tfmask.runs       every run-directory reader and writer (`load_encoder`, `load_finetuned`)
    tfmask.model      Keras layers, `BertEncoder`, heads (`MaskedLM`, `TokenClassifier`,
                      `SequenceClassifier`); keras and TensorFlow core only
    tfmask.text       tokenization, sequences, masking, tag schemes and labels, readers,
                      tf.data pipelines for pretraining and fine-tuning
    tfmask.demo       the embedded default data (an invented world, written on demand)
    tfmask.config     dataclass configs; tfmask.presets: encoder sizes

`import tfmask` loads no TensorFlow, so the command line answers at once. It registers the
serializable classes (`tfmask>BertEncoder`, ...) with Keras as soon as Keras is imported, so
`keras.saving.load_model("RUN/encoder.keras")` works after a bare `import tfmask`.
"""

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


def load_predictor(run_dir: str, batch_size: int = 64, top_k: int = 5):
    """Calls a run on strings in Python, with the export's in-graph text processing, without
    exporting it: `tfmask.load_predictor("runs/ner")(["text", ...])` gives one record per text
    (see `tfmask.serve.predictor`). Imports TensorFlow when called, not before."""
    from tfmask.serve.predictor import load_predictor as load

    return load(run_dir, batch_size=batch_size, top_k=top_k)


def register_keras_classes() -> None:
    """Imports the modules whose classes `.keras` files name (`tfmask>ClassName`)."""
    import tfmask.model  # noqa: F401  layers, encoder, heads
    import tfmask.train.optimizer  # noqa: F401  schedule and optimizer of a compiled model


def _initializing(name: str) -> bool:
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Registers tfmask's Keras classes once Keras and TensorFlow have finished importing.

    `import tensorflow` imports Keras and `import keras` imports TensorFlow, so whichever
    import is the outer one finishes last: registration waits for it, and never touches a
    half-initialised module.
    """

    _WATCHED = ("keras", "tensorflow")

    def find_spec(self, name, path=None, target=None):
        if name not in self._WATCHED:
            return None
        sys.meta_path.remove(self)  # find the real spec without finding ourselves
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            others = [n for n in self._WATCHED if n != name]
            if "keras" in sys.modules and not any(_initializing(n) for n in others):
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                register_keras_classes()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules and not any(map(_initializing, _RegisterWhenKerasLoads._WATCHED)):
    register_keras_classes()
elif not any(isinstance(f, _RegisterWhenKerasLoads) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
