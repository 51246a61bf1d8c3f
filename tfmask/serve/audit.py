"""Which ops each serving signature needs, and whether TF Serving can run them.

TF Serving links a fixed tensorflow-text release, and one op it lacks makes a whole SavedModel
unloadable. `audit` lists every op type of each signature's graph (nested functions included),
separates the tensorflow-text ones from TensorFlow's own, and refuses what no server runs:

    serve        core ops only                      -> any TF Serving
    serve_text   + the tokenizer's tensorflow-text ops  -> TF Serving >= 2.20

`export` writes the report to `assets.extra/op_audit.json` beside each text export.
"""

from __future__ import annotations

import tensorflow as tf

#: tensorflow-text ops that TF Serving 2.12-2.19 (which link tensorflow-text 2.12.1) lack.
MISSING_BEFORE_SERVING_2_20 = ("TFText>RoundRobinTrim", "TFText>RoundRobinGenerateMasks",
                               "TFText>Utf8Binarize")
_PY_FUNCTION_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


class ExportError(ValueError):
    """The run cannot be exported (or the export would not be servable)."""


def graph_op_types(concrete_function) -> set[str]:
    """Every op type in a concrete function's graph, nested functions included."""
    graph_def = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    called = {f.signature.name for f in graph_def.library.function}
    return ops - called  # calls of library functions are not op types


def is_registered(op_type: str) -> bool:
    """Whether this process has a kernel registry entry for `op_type` (TensorFlow's own ops,
    plus those of the custom-op libraries loaded: here only tensorflow-text's)."""
    from tensorflow.python.framework import op_def_registry

    return op_def_registry.get(op_type) is not None


def audit(functions: dict) -> dict:
    """Op types per signature, the tensorflow-text ones, and what that needs of TF Serving.

    Args:
      functions: signature name -> concrete function.

    Returns:
      signature name -> {"ops", "tensorflow_text_ops", "core_ops_only", "min_tf_serving",
      "tf_serving_2_12_to_2_19_lack"}.

    Raises:
      ExportError: a `py_function` (no server can run one) or an op that neither TensorFlow
        nor tensorflow-text registers.
    """
    core = set(dir(tf.raw_ops))
    report = {}
    for name, function in functions.items():
        ops = graph_op_types(function)
        python = sorted(ops & _PY_FUNCTION_OPS)
        if python:
            raise ExportError(f"signature {name!r} calls Python ({python}): TF Serving cannot "
                              "run it; keep preprocessing in TensorFlow ops")
        custom = sorted(ops - core)
        unknown = [op for op in custom if not is_registered(op)]
        if unknown:
            raise ExportError(f"signature {name!r} uses ops no TF Serving build has: {unknown}")
        missing_old = sorted(set(custom) & set(MISSING_BEFORE_SERVING_2_20))
        report[name] = {
            "ops": sorted(ops),
            "tensorflow_text_ops": custom,
            "core_ops_only": not custom,
            "min_tf_serving": "any" if not custom else "2.20",
            "tf_serving_2_12_to_2_19_lack": missing_old,
        }
    return report
