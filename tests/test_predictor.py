"""`tfmask.load_predictor(run)`: a run called on strings in Python answers exactly as its
export's `serve_text` does, for sentiment, NER and fill-mask runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tfmask
from tfmask.commands import show
from tfmask.serve import export, predict

#: Empty and blank texts, one long enough for several NER windows (a 32- or 128-piece
#: sequence), non-ASCII text, invalid UTF-8 bytes and "[MASK]" markers (fill-mask).
TEXTS = ["Vim Sokirani is a professor at the University of Vaefinenza .", "",
         "a gripping , funny and moving film .", "   ",
         " ".join(["the city council met in the capital ."] * 40),
         "東京 café naïve 🍕 [MASK] [MASK] dull .", b"\xff broken \xc3( bytes",
         "the [MASK] sat on the mat ."]


#: A sentence-pair run's inputs: (text, text_pair) tuples.
PAIRS = [("a man is sleeping on the bench .", "nobody is sleeping ."), ("", ""),
         ("the council met in the capital .", " ".join(["the council met ."] * 30)),
         ("東京 café 🍕", "   ")]


@pytest.fixture(scope="module")
def runs_by_kind(sentiment_run, ner_run, pretraining_run, pair_run):
    return {"sentiment": sentiment_run[0], "ner": ner_run[0], "fill_mask": pretraining_run[0],
            "classify": pair_run[0]}


def _export_answers(export_dir: str, texts) -> tuple[dict, list[dict]]:
    """The export's `serve_text` outputs for `texts` (one call), and the records `tfmask
    predict` prints for them."""
    _loaded, serve_text, label_names = predict._serve_text(export_dir)
    out = predict._outputs(serve_text, texts)
    return out, predict.records(out, texts, label_names)


def _assert_same_outputs(expected: dict, actual: dict, atol: float = 1e-6) -> None:
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert actual[name].shape == value.shape, name
        if value.dtype.kind == "f":
            np.testing.assert_allclose(actual[name], value, atol=atol, err_msg=name)
        else:
            assert actual[name].tolist() == value.tolist(), name


@pytest.mark.parametrize("kind", ["sentiment", "ner", "fill_mask", "classify"])
def test_predictor_answers_equal_the_exported_models(runs_by_kind, kind, tmp_path):
    run, texts = runs_by_kind[kind], PAIRS if kind == "classify" else TEXTS
    result = export.export(run, kind, str(tmp_path))
    # The run lists its exports (what `tfmask show RUN` prints).
    listed = show.describe(run)["files"]["exports"][-1]
    assert (listed["text"], listed["ids"], listed["kind"]) == (
        result["text"]["path"], result["ids"]["path"], kind)
    expected, exported = _export_answers(result["text"]["path"], texts)
    # Two texts per graph call: batches of different widths are joined as one call pads.
    predictor = tfmask.load_predictor(run, batch_size=2)
    assert predictor.kind == kind and predictor.pair == (kind == "classify")
    _assert_same_outputs(expected, predictor.outputs(texts))
    records = predictor(texts)
    assert len(records) == len(texts)
    for got, want in zip(records, exported):
        assert got.keys() == want.keys()
        for key in got:
            if key in ("probabilities", "masks"):
                assert _rounded(got[key]) == _rounded(want[key]), key
            else:
                assert got[key] == want[key], key
    # What a user reads, by kind.
    first = records[0]
    if kind == "sentiment":
        assert set(first["probabilities"]) == set(predictor.labels)
        assert first["label"] == max(first["probabilities"], key=first["probabilities"].get)
    elif kind == "ner":
        assert first["words"] == TEXTS[0].split() and len(first["tags"]) == len(first["words"])
        assert len(records[4]["tags"]) == len(TEXTS[4].split())  # every word of a long text
        for entity in (e for r, t in zip(records, TEXTS) if isinstance(t, str)
                       for e in r["entities"]):
            assert entity["type"] and entity["end"] > entity["start"]
    elif kind == "classify":
        assert first["text_pair"] == PAIRS[0][1] and first["label"] in predictor.labels
        tab_separated = predictor(["\t".join(pair) for pair in PAIRS])
        assert _rounded(tab_separated) == _rounded(records)
    else:
        assert [len(r["masks"]) for r in records] == [0, 0, 0, 0, 0, 2, 0, 1]
        assert all(len(m) == export.TOP_K for m in records[7]["masks"])


def _rounded(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_predictor_on_no_texts_and_bad_arguments(runs_by_kind, tmp_path):
    predictor = tfmask.load_predictor(runs_by_kind["sentiment"])
    assert predictor([]) == []
    assert all(v.shape[0] == 0 for v in predictor.outputs([]).values())
    with pytest.raises(TypeError, match="list of texts"):
        predictor("one string")
    with pytest.raises(ValueError, match="batch_size"):
        tfmask.load_predictor(runs_by_kind["sentiment"], batch_size=0)
    with pytest.raises(ValueError, match="nothing to export"):
        tfmask.load_predictor(str(tmp_path))


def test_import_tfmask_still_loads_no_tensorflow():
    code = ("import sys, tfmask; tfmask.load_predictor; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tensorflow_text')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
