"""Entity F1 and classification scores, checked against independent oracles.

seqeval (the library NER papers report with, conlleval-compatible in its default mode) is the
oracle for `entity_spans` / `entity_scores`: hand-written edge cases plus 200 seeded random
tag sequences must give *equal* floats, not merely close ones. Classification scores are
checked against values worked out by hand and against scikit-learn.
"""

from __future__ import annotations

import random

import pytest

from tfmask.train.metrics import classification_scores, entity_scores, entity_spans

seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402

# seqeval warns on every zero division; the values (0.0) are what is compared.
pytestmark = pytest.mark.filterwarnings("ignore")


def seqeval_spans(tags):
    """seqeval's entities with an exclusive end, as `entity_spans` returns them."""
    return [(t, s, e + 1) for t, s, e in get_entities(list(tags))]


def assert_same_as_seqeval(true_seqs, pred_seqs):
    true_seqs = [list(s) for s in true_seqs]
    pred_seqs = [list(s) for s in pred_seqs]
    ours = entity_scores(true_seqs, pred_seqs)
    assert ours["precision"] == seqeval_metrics.precision_score(true_seqs, pred_seqs)
    assert ours["recall"] == seqeval_metrics.recall_score(true_seqs, pred_seqs)
    assert ours["f1"] == seqeval_metrics.f1_score(true_seqs, pred_seqs)
    report = seqeval_metrics.classification_report(true_seqs, pred_seqs, output_dict=True)
    per_type = {k: v for k, v in report.items() if not k.endswith(" avg")}
    assert sorted(per_type) == sorted(ours["per_type"])
    for type_, theirs in per_type.items():
        mine = ours["per_type"][type_]
        assert (mine["precision"], mine["recall"], mine["f1"], mine["support"]) == (
            theirs["precision"], theirs["recall"], theirs["f1-score"], theirs["support"]), type_
    return ours


# --- entity_spans: conlleval's chunk rules ----------------------------------------------------

SPAN_CASES = [
    # (tags, entities with exclusive end)
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["O", "I-PER", "I-PER", "O"], [("PER", 1, 3)]),  # I- after O starts a chunk
    (["I-PER"], [("PER", 0, 1)]),  # I- at the start of the sentence
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),  # type switch
    (["I-ORG", "B-ORG", "I-ORG"], [("ORG", 0, 1), ("ORG", 1, 3)]),  # IOB1 B- between chunks
    (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["O", "O", "B-MISC", "I-MISC"], [("MISC", 2, 4)]),  # chunk runs to the end
    (["S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"],
     [("PER", 0, 1), ("LOC", 1, 4), ("LOC", 4, 5)]),  # IOBES
    (["E-PER", "E-PER"], [("PER", 0, 1), ("PER", 1, 2)]),  # E- after E- starts one
    (["S-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 2)]),  # I- after S- starts one
    (["B-PER", "E-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),
    (["B-PER", "S-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["B-PER", "I-PER", "E-PER", "I-PER"], [("PER", 0, 3), ("PER", 3, 4)]),
    (["B-A-B", "I-A-B"], [("A-B", 0, 2)]),  # a type with a hyphen
    (["O", "O"], []),
    ([], []),
]


@pytest.mark.parametrize("tags, expected", SPAN_CASES)
def test_entity_spans_hand_written(tags, expected):
    assert entity_spans(tags) == expected
    assert seqeval_spans(tags) == expected


def test_entity_spans_rejects_non_tags():
    for bad in ["X-PER", "B-", "B", "o", "B PER", ""]:
        with pytest.raises(ValueError, match="not an entity tag"):
            entity_spans(["O", bad])


# --- entity_scores: equal to seqeval ---------------------------------------------------------

def test_entity_scores_hand_written():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "I-ORG"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "I-ORG", "O"]]
    scores = assert_same_as_seqeval(true, pred)
    # gold PER, LOC, ORG; predicted PER (right) and a too-short ORG (wrong).
    assert (scores["precision"], scores["recall"]) == (1 / 2, 1 / 3)
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                         "support": 1}
    assert scores["per_type"]["PER"]["f1"] == 1.0


EDGE_CASES = {
    "i_after_o": ([["O", "I-PER", "I-PER"]], [["O", "B-PER", "I-PER"]]),  # same entity
    "type_switch": ([["B-PER", "I-PER", "I-LOC"]], [["B-PER", "I-PER", "B-LOC"]]),
    "iobes": ([["S-PER", "B-LOC", "E-LOC", "O"]], [["B-PER", "B-LOC", "I-LOC", "O"]]),
    "chunks_at_ends": ([["I-ORG", "O", "B-ORG"], ["B-LOC"]], [["B-ORG", "O", "I-ORG"], ["O"]]),
    "empty_predictions": ([["B-PER", "O"], ["B-LOC", "I-LOC"]], [["O", "O"], ["O", "O"]]),
    "all_o": ([["O", "O"], ["O"]], [["O", "O"], ["O"]]),
    "only_false_positives": ([["O", "O"]], [["B-MISC", "I-MISC"]]),
    "empty_sentences": ([[], ["B-PER"], []], [[], ["B-PER"], []]),
    "entity_across_sentences": ([["O", "B-PER"], ["I-PER", "O"]],
                                [["O", "B-PER"], ["B-PER", "O"]]),
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_entity_scores_edge_cases(name):
    true, pred = EDGE_CASES[name]
    scores = assert_same_as_seqeval(true, pred)
    if name in ("empty_predictions", "all_o", "only_false_positives"):
        assert scores["f1"] == 0.0
    if name == "entity_across_sentences":  # a sentence end closes an entity
        assert scores["f1"] == 1.0


TYPES = ["PER", "LOC", "ORG", "MISC"]
IOB_TAGS = ["O"] * 6 + [f"{p}-{t}" for t in TYPES for p in "BI"]
IOBES_TAGS = IOB_TAGS + [f"{p}-{t}" for t in TYPES for p in "ES"]


def random_tags(rng, tag_set, length):
    return [rng.choice(tag_set) for _ in range(length)]


def perturb(rng, tags, tag_set, rate):
    """A 'prediction': the gold tags with a fraction replaced, so many entities match."""
    return [rng.choice(tag_set) if rng.random() < rate else t for t in tags]


def test_entity_scores_equal_seqeval_on_random_sequences():
    rng = random.Random(1234)
    for case in range(200):
        tag_set = IOBES_TAGS if case % 3 == 0 else IOB_TAGS
        true = [random_tags(rng, tag_set, rng.randint(0, 12)) for _ in range(rng.randint(1, 6))]
        rate = rng.choice([0.0, 0.1, 0.3, 1.0])
        pred = [perturb(rng, t, tag_set, rate) for t in true]
        assert_same_as_seqeval(true, pred)
        for tags in true + pred:
            assert entity_spans(tags) == seqeval_spans(tags)


def test_entity_scores_argument_errors():
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        entity_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 1: 2 gold tags but 1 predicted"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])


# --- classification_scores ------------------------------------------------------------------

Y_TRUE = [0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0, 2]


def test_classification_scores_hand_computed():
    scores = classification_scores(Y_TRUE, Y_PRED, ["neg", "neu", "pos"])
    # rows = gold class, columns = predicted class
    assert scores["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert scores["accuracy"] == 5 / 7
    assert scores["per_class"] == {
        "neg": {"precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "support": 2},
        "neu": {"precision": 2 / 3, "recall": 1.0, "f1": 4 / 5, "support": 2},
        "pos": {"precision": 1.0, "recall": 2 / 3, "f1": 4 / 5, "support": 3},
    }
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.8) / 3, abs=1e-15)


def test_classification_scores_count_absent_classes_in_macro_f1():
    scores = classification_scores(Y_TRUE, Y_PRED, ["neg", "neu", "pos", "unused"])
    assert scores["per_class"]["unused"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                             "support": 0}
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.8) / 4, abs=1e-15)
    assert scores["confusion_matrix"][3] == [0, 0, 0, 0]


def test_classification_scores_empty_and_errors():
    empty = classification_scores([], [], ["a", "b"])
    assert (empty["accuracy"], empty["macro_f1"]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="3 gold labels but 2 predictions"):
        classification_scores([0, 1, 1], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"y_pred holds class id 2, outside \[0, 2\)"):
        classification_scores([0, 1], [0, 2], ["a", "b"])


def test_classification_scores_match_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(7)
    for num_classes in (2, 3, 5):
        y_true = rng.integers(0, num_classes, 300)
        y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, num_classes, 300))
        names = [f"c{k}" for k in range(num_classes)]
        ours = classification_scores(y_true, y_pred, names)
        labels = list(range(num_classes))
        assert ours["accuracy"] == sklearn_metrics.accuracy_score(y_true, y_pred)
        assert ours["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(
            y_true, y_pred, labels=labels, average="macro", zero_division=0), abs=1e-12)
        assert ours["confusion_matrix"] == sklearn_metrics.confusion_matrix(
            y_true, y_pred, labels=labels).tolist()
        p, r, f, s = sklearn_metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=0)
        for k, name in enumerate(names):
            got = ours["per_class"][name]
            assert got["precision"] == pytest.approx(p[k], abs=1e-12)
            assert got["recall"] == pytest.approx(r[k], abs=1e-12)
            assert got["f1"] == pytest.approx(f[k], abs=1e-12)
            assert got["support"] == s[k]
