"""`write_all`: every default data set in one folder, as the training jobs read them."""

from __future__ import annotations

import os

from tfmask.demo.corpus import write_corpus
from tfmask.demo.ner import ner_sentences, write_conll
from tfmask.demo.pairs import pair_examples, write_pairs_tsv
from tfmask.demo.reviews import sentiment_examples, write_sentiment_tsv
from tfmask.demo.world import derive_seed


def write_all(directory: str | os.PathLike, seed: int = 0) -> dict[str, str]:
    """Write every default data set under `directory`; return their paths."""
    root = os.fspath(directory)
    paths = {
        "corpus_dir": os.path.join(root, "corpus"),
        "ner_train": os.path.join(root, "ner", "train.txt"),
        "ner_valid": os.path.join(root, "ner", "valid.txt"),
        "sentiment_train": os.path.join(root, "sentiment", "train.tsv"),
        "sentiment_dev": os.path.join(root, "sentiment", "dev.tsv"),
        "pairs_train": os.path.join(root, "pairs", "train.tsv"),
        "pairs_dev": os.path.join(root, "pairs", "dev.tsv"),
    }
    # Held-out sets use their own derived seed so they are not copies of train.
    held_out = derive_seed(seed, "held-out")
    write_corpus(paths["corpus_dir"], seed)
    write_conll(paths["ner_train"], ner_sentences(seed, 2000))
    write_conll(paths["ner_valid"], ner_sentences(held_out, 400))
    write_sentiment_tsv(paths["sentiment_train"], sentiment_examples(seed, 2000))
    write_sentiment_tsv(paths["sentiment_dev"], sentiment_examples(held_out, 400))
    write_pairs_tsv(paths["pairs_train"], pair_examples(seed, 2000))
    write_pairs_tsv(paths["pairs_dev"], pair_examples(held_out, 400))
    return paths
