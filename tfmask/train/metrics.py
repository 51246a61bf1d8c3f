"""Fine-tuning metrics: entity-level F1 (conlleval / seqeval rules) and classification scores.

Pure Python, so the numbers can be checked line by line and computed on predictions that
have already left the graph (`model.predict` -> argmax -> label names).

NER is scored on *entities*, not tokens: a predicted entity counts only when its type, first
word and last word all match a gold entity. Chunks are read with the rules of conlleval.pl,
which seqeval's default mode (`mode=None`) reproduces, so these scores are the ones papers
report for CoNLL-2003:

    tags        B-PER  I-PER  O  I-LOC  I-ORG  B-ORG  E-MISC  S-MISC
    chunks      [PER 0:2]        [LOC 3:4] [ORG 4:5] [ORG 5:6] [MISC 6:7] [MISC 7:8]

An `I-X` after `O` or after another type starts a chunk (it is not dropped); a type switch
ends one; `B-X` always starts one. IOBES tags (`E-`, `S-`) are read the same way, so scores of
IOB1, IOB2 and IOBES sequences are all conlleval's.

Reference: seqeval (https://github.com/chakki-works/seqeval), `get_entities`,
`start_of_chunk`, `end_of_chunk` and `precision_recall_fscore_support`; tests/test_metrics.py
checks these functions against it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from tfmask.text.labels import entity_spans

def _prf(tp: int, predicted: int, true: int) -> tuple[float, float, float]:
    """Precision, recall, F1; 0.0 where a denominator is 0 (seqeval's `zero_division="warn"`)."""
    precision = tp / predicted if predicted else 0.0
    recall = tp / true if true else 0.0
    # The same operations in the same order as seqeval, so the floats are bit-identical.
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def entity_scores(true_seqs: Sequence[Sequence[str]],
                  pred_seqs: Sequence[Sequence[str]]) -> dict:
    """Entity-level micro precision / recall / F1 and per-type scores, as seqeval computes them.

    Args:
      true_seqs: gold tags, one list of strings per sentence.
      pred_seqs: predicted tags, the same number of sentences and words.

    Returns:
      `{"precision", "recall", "f1"}` (micro-averaged over all entities: floats) and
      `"per_type": {type: {"precision", "recall", "f1", "support"}}` for every type found in
      the gold or the predicted tags (`support` = number of gold entities, an int). A score
      whose denominator is 0 is 0.0, as seqeval reports it.

    Raises:
      ValueError: sentence counts or lengths differ, or a tag is not an entity tag.

    Example:
      >>> s = entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
      >>> s["f1"], s["per_type"]["PER"]["support"]
      (0.0, 1)
    """
    if len(true_seqs) != len(pred_seqs):
        raise ValueError(f"{len(true_seqs)} gold sentences but {len(pred_seqs)} predicted")
    true_entities: dict[str, set] = {}
    pred_entities: dict[str, set] = {}
    for i, (true, pred) in enumerate(zip(true_seqs, pred_seqs)):
        if len(true) != len(pred):
            raise ValueError(f"sentence {i}: {len(true)} gold tags but {len(pred)} predicted")
        for entities, tags in ((true_entities, true), (pred_entities, pred)):
            for type_, start, end in entity_spans(tags):
                entities.setdefault(type_, set()).add((i, start, end))

    per_type = {}
    total_tp = total_pred = total_true = 0
    for type_ in sorted(true_entities.keys() | pred_entities.keys()):
        true_set = true_entities.get(type_, set())
        pred_set = pred_entities.get(type_, set())
        tp = len(true_set & pred_set)
        precision, recall, f1 = _prf(tp, len(pred_set), len(true_set))
        per_type[type_] = {"precision": precision, "recall": recall, "f1": f1,
                           "support": len(true_set)}
        total_tp += tp
        total_pred += len(pred_set)
        total_true += len(true_set)
    precision, recall, f1 = _prf(total_tp, total_pred, total_true)
    return {"precision": precision, "recall": recall, "f1": f1, "per_type": per_type}


def classification_scores(y_true: Iterable[int], y_pred: Iterable[int],
                          label_names: Sequence[str]) -> dict:
    """Accuracy, macro F1, per-class scores and the confusion matrix of a K-class classifier.

    Args:
      y_true: gold class ids in `[0, K)`, K = `len(label_names)` (ints or a NumPy int array).
      y_pred: predicted class ids, same length.
      label_names: the K class names, index = class id.

    Returns:
      `accuracy`: fraction of examples right (0.0 with no examples).
      `macro_f1`: unweighted mean of the K per-class F1 scores. Every class in `label_names`
        counts, also one absent from both `y_true` and `y_pred` (its F1 is 0.0), so the
        number does not depend on which classes a small evaluation set happens to contain
        (scikit-learn's `f1_score(average="macro", labels=range(K))`).
      `per_class`: `{name: {"precision", "recall", "f1", "support"}}`, 0.0 where a
        denominator is 0.
      `confusion_matrix`: K x K list of lists of ints, `[true_id][predicted_id]`.
      `positive_f1` (two classes only): the F1 of class id 1, the positive class, which is
        the "F1" GLUE reports beside accuracy for MRPC (`equivalent`) and QQP (`duplicate`)
        (scikit-learn's `f1_score(average="binary")`).

    Example:
      >>> s = classification_scores([0, 1, 1], [0, 1, 0], ["neg", "pos"])
      >>> s["accuracy"], s["confusion_matrix"]
      (0.6666666666666666, [[1, 0], [1, 1]])
    """
    y_true = [int(y) for y in y_true]
    y_pred = [int(y) for y in y_pred]
    num_classes = len(label_names)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold labels but {len(y_pred)} predictions")
    for name, ids in (("y_true", y_true), ("y_pred", y_pred)):
        bad = [y for y in ids if not 0 <= y < num_classes]
        if bad:
            raise ValueError(f"{name} holds class id {bad[0]}, outside [0, {num_classes})")

    confusion = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(y_true, y_pred):
        confusion[t][p] += 1
    per_class = {}
    f1_sum = 0.0
    for k, name in enumerate(label_names):
        tp = confusion[k][k]
        support = sum(confusion[k])
        predicted = sum(row[k] for row in confusion)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        # 2tp / (support + predicted) equals 2pr / (p + r) with one rounding instead of four.
        f1 = 2 * tp / (support + predicted) if support + predicted else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1,
                           "support": support}
        f1_sum += f1
    correct = sum(confusion[k][k] for k in range(num_classes))
    scores = {
        "accuracy": correct / len(y_true) if y_true else 0.0,
        "macro_f1": f1_sum / num_classes if num_classes else 0.0,
        "per_class": per_class,
        "confusion_matrix": confusion,
    }
    if num_classes == 2:
        scores["positive_f1"] = per_class[label_names[1]]["f1"]
    return scores
