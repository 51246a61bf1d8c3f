"""Embedded default data: a small, self-written, procedurally generated corpus.

Why this exists: `tfmask pretrain` with no `--corpus` has to run end to end, offline, in a few
minutes on a CPU, and the NER and sentiment fine-tuning jobs need labelled data of the same
kind. Downloading Wikipedia, CoNLL-2003 or SST-2 is not an option (no network, licences, size),
so the project writes its own text, from code and the Python standard library only; no sentence
or name is copied from anywhere. Every data set talks about one invented world, built once from
a fixed seed, so the tokenizer vocabulary learnt from the corpus fits the NER and sentiment
data; the `seed` arguments only change what is sampled from it.

The grammar gives a tiny BERT something real to learn by masked language modelling: agreement
("a"/"an", plurals after counts, "was"/"were"), one tense per document with matching time
expressions ("last spring" / "next spring"), collocations ("board of directors", "heavy rain"),
stable facts (a person always works for the same organisation in the same city), numbers,
dates, quotes and punctuation.

    lexicon      ordinary words and their inflection
    names        invented names that never collide with an ordinary word
    world        the invented world (`build_world`) and the per-purpose seeds
    grammar      the template engine: productions -> spans -> words and IOB2 tags
    productions  the news sentences, grouped by topic
    corpus       documents and the pretraining corpus (`corpus_documents`, `write_corpus`)
    ner          tagged sentences and CoNLL-2003 files (`ner_sentences`, `write_conll`)
    reviews      labelled reviews and SST-2 style TSVs (`sentiment_examples`,
                 `write_sentiment_tsv`)
    pairs        premise / hypothesis pairs labelled for inference, MNLI style TSVs
                 (`pair_examples`, `write_pairs_tsv`)
    datasets     `write_all`: every data set in one folder

Everything is deterministic given `seed` and uses private `random.Random` instances, never the
global random state.
"""

from __future__ import annotations

from tfmask.demo.corpus import corpus_documents, write_corpus
from tfmask.demo.datasets import write_all
from tfmask.demo.ner import ner_sentences, write_conll
from tfmask.demo.pairs import pair_examples, write_pairs_tsv
from tfmask.demo.reviews import sentiment_examples, write_sentiment_tsv

__all__ = [
    "corpus_documents",
    "write_corpus",
    "ner_sentences",
    "write_conll",
    "pair_examples",
    "write_pairs_tsv",
    "sentiment_examples",
    "write_sentiment_tsv",
    "write_all",
]
