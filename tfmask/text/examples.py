"""Fine-tuning examples: one split read from files, TFDS or the embedded data, as label ids.

    CoNLL file ─ readers.read_conll ─> Sentence(words, IOB2 tags) ─> Examples(texts = word
    lists, label_ids = tag ids in the run's label list); the label list is learned from the
    training split (`labels.label_vocabulary`) and every other split is mapped onto it.
    TSV/CSV ─ readers.read_classification ─> Examples(texts = strings, label_ids = class ids);
    with --text-pair-column (or a TFDS pair dataset) also text_pairs = the second strings.

A label that the training split never shows is an error naming its file and line.
"""

from __future__ import annotations

import dataclasses
import os

from tfmask.config import FinetuneExperiment
from tfmask.text import readers
from tfmask.text.labels import label_vocabulary


@dataclasses.dataclass
class Examples:
    """One split, ready for the pipelines: NER words + tag ids, or texts (and the second
    texts of pairs) + class ids."""

    source: str
    texts: list  # NER: list of word lists; sentiment, classify: list of strings
    label_ids: list  # NER: list of tag-id lists; sentiment, classify: list of ints
    text_pairs: list | None = None  # classify on pairs: the second text of each example

    def __len__(self):
        return len(self.texts)


def _ner_examples(sentences: list[readers.Sentence], labels: list[str], source: str
                  ) -> Examples:
    index = {t: i for i, t in enumerate(labels)}
    ids = []
    for s in sentences:
        for offset, tag in enumerate(s.tags):
            if tag not in index:
                raise readers.ReaderError(
                    source, s.line + offset, f"tag {tag!r} does not occur in the training "
                    f"data (labels: {' '.join(labels)})")
        ids.append([index[t] for t in s.tags])
    return Examples(source, [list(s.words) for s in sentences], ids)


def _read_ner(path_or_split: str, config, tfds_split: bool) -> list[readers.Sentence]:
    d = config.data
    if tfds_split:
        return readers.tfds_conll(path_or_split, d.tfds_data_dir, name=d.tfds)
    return readers.read_conll(path_or_split, tag_column=d.tag_column)


def _column(value: str | None):
    """A column given on the command line: an index when it is an integer, else a name."""
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _read_sentiment(path_or_split: str, config, tfds_split: bool,
                    label_names: list[str] | None):
    d = config.data
    if tfds_split:
        texts, labels, names = readers.tfds_classification(d.tfds, path_or_split,
                                                           d.tfds_data_dir)
        if label_names is not None and names != label_names:
            raise ValueError(f"{d.tfds}:{path_or_split}: label names {names} differ from the "
                             f"model's {label_names}")
        return texts, labels, names
    return readers.read_classification(path_or_split, _column(d.text_column),
                                       _column(d.label_column), label_names=label_names,
                                       text_pair_column=_column(d.text_pair_column))


def _sequence_examples(where: str, texts: list, ids: list, experiment) -> Examples:
    """Texts (or `(text, text_pair)` tuples) -> `Examples`; pairs only for classify, and a
    pair run's data must be pairs."""
    pairs = bool(texts) and isinstance(texts[0], tuple)
    if pairs and experiment.task != "classify":
        raise ValueError(f"{where} holds sentence pairs: fine-tune them with tfmask finetune "
                         f"classify, not {experiment.task}")
    if experiment.data.text_pair_column and not pairs:
        raise ValueError(f"{where} holds single texts, but the model takes sentence pairs "
                         f"(text_pair_column {experiment.data.text_pair_column!r})")
    if not pairs:
        return Examples(where, texts, ids)
    return Examples(where, [a for a, _ in texts], ids, [b for _, b in texts])


def load_split(experiment: FinetuneExperiment, source: str, tfds_split: bool = False,
               labels: list[str] | None = None) -> tuple[Examples, list[str]]:
    """Reads one split. `labels=None` learns the label set (training data); otherwise the
    split is mapped onto `labels`, and a label outside them is an error naming its line."""
    where = f"{experiment.data.tfds}:{source}" if tfds_split else source
    if experiment.task == "ner":
        sentences = _read_ner(source, experiment, tfds_split)
        if labels is None:
            labels = label_vocabulary(sentences)
        return _ner_examples(sentences, labels, where), labels
    texts, ids, names = _read_sentiment(source, experiment, tfds_split, labels)
    return _sequence_examples(where, texts, ids, experiment), names


def resolve_data(experiment: FinetuneExperiment, run_dir: str) -> None:
    """Without --train and --tfds, uses the embedded data sets the project writes itself
    (`FinetuneExperiment.validate` has checked that --train comes with --valid)."""
    d = experiment.data
    if d.train or d.tfds:
        return
    from tfmask import demo

    paths = demo.write_all(os.path.join(run_dir, "embedded_data"), seed=0)
    if experiment.task == "ner":
        d.train, d.valid = paths["ner_train"], paths["ner_valid"]
    elif experiment.task == "classify":  # sentence pairs: premise, hypothesis, label
        d.train, d.valid = paths["pairs_train"], paths["pairs_dev"]
        d.text_column, d.text_pair_column = "premise", "hypothesis"
    else:
        d.train, d.valid = paths["sentiment_train"], paths["sentiment_dev"]


def load_train_valid(experiment: FinetuneExperiment):
    d = experiment.data
    if d.train:  # files win over a recipe's TFDS default
        train, labels = load_split(experiment, d.train)
        valid, _ = load_split(experiment, d.valid, labels=labels)
    else:
        train, labels = load_split(experiment, d.tfds_train_split, tfds_split=True)
        if train.text_pairs is not None and not d.text_pair_column:
            # The run records which features it read: a pair run is one whose config names
            # its text_pair_column (what the export and evaluate look at).
            d.text_column, d.text_pair_column = readers.tfds_text_keys(d.tfds, d.tfds_data_dir)
        valid, _ = load_split(experiment, d.tfds_valid_split, tfds_split=True, labels=labels)
    if d.max_train_examples:
        n = d.max_train_examples
        train = Examples(train.source, train.texts[:n], train.label_ids[:n],
                         None if train.text_pairs is None else train.text_pairs[:n])
    if not len(train) or not len(valid):
        raise ValueError(f"{train.source if not len(train) else valid.source}: no examples")
    return train, valid, labels
