"""One vocabulary of names: every config field reaches the code it configures, by its own name.

A field that nothing reads (dropped) or that a function knows under another name (renamed)
fails here: statically (every field is read somewhere as `section.field`), by signature (the
builders take the fields under the config's names) and by behaviour (changing one field of
`MaskingConfig`, `DataConfig` or `EncoderConfig` changes what the code builds).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from helpers import constructor_params, tiny_tokenizer
from tfmask import config as config_module
from tfmask.config import DataConfig, EncoderConfig, MaskingConfig
from tfmask.model.encoder import BertEncoder
from tfmask.text import finetuning_data, masking, packing, pretraining_data

PACKAGE = pathlib.Path(config_module.__file__).parent

#: The config dataclasses whose fields the library reads (the experiments are their trees).
SECTIONS = [c for _, c in inspect.getmembers(config_module, inspect.isclass)
            if dataclasses.is_dataclass(c) and c.__module__ == config_module.__name__
            and not c.__name__.endswith("Experiment")]


def _names_read() -> dict[str, set[str]]:
    """Per library module other than config.py: attribute names it reads, and parameter names
    of its functions (a section passed whole as `**dataclasses.asdict(section)` reaches them
    by name)."""
    read = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "config.py" and path.parent == PACKAGE:
            continue
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
        read[str(path.relative_to(PACKAGE))] = names
    return read


def test_sections_are_found():
    names = {c.__name__ for c in SECTIONS}
    assert {"EncoderConfig", "TokenizerConfig", "MaskingConfig", "DataConfig", "TrainConfig",
            "FinetuneDataConfig", "FinetuneTrainConfig"} <= names


def test_every_config_field_is_read_by_the_library():
    everywhere = set().union(*_names_read().values())
    unread = [f"{section.__name__}.{f.name}" for section in SECTIONS
              for f in dataclasses.fields(section) if f.name not in everywhere]
    assert not unread, f"config fields that no library module reads: {unread}"


def test_encoder_config_is_bert_encoder_arguments():
    fields = {f.name for f in dataclasses.fields(EncoderConfig)}
    assert fields == set(constructor_params(BertEncoder)) - {"dtype"}
    config = EncoderConfig(vocabulary_size=37, num_layers=1, num_heads=4, hidden_dim=16,
                           intermediate_dim=24, dropout=0.05, max_sequence_length=33,
                           num_segments=3, activation="gelu_approximate")
    for f in dataclasses.fields(EncoderConfig):
        assert getattr(config, f.name) != f.default, f.name
    assert BertEncoder.from_encoder_config(config).encoder_config() == config


@pytest.mark.parametrize("builder, fields", [
    (finetuning_data.ner_dataset,
     {"max_sequence_length", "window_stride", "length_buckets", "batch_size", "seed",
      "mask_rate"}),
    (finetuning_data.classification_dataset,
     {"max_sequence_length", "truncation", "length_buckets", "batch_size", "seed",
      "mask_rate"}),
    (finetuning_data.ner_windows, {"max_sequence_length", "window_stride", "batch_size"}),
])
def test_finetuning_builders_take_the_config_names(builder, fields):
    """FinetuneDataConfig / FinetuneTrainConfig fields, under the same names."""
    assert fields <= set(inspect.signature(builder).parameters), builder.__name__


# --- behaviour: each field of MaskingConfig changes the masks ----------------------------------
def _packed_batch():
    tokenizer = tiny_tokenizer()
    text = tf.constant(["the unaffable cat sat on the big mat . hello world , the dogs sat"] * 8)
    ids, starts = tokenizer.pieces_and_word_starts(text)
    features = packing.finalize(ids, starts, 24, tokenizer.cls_token_id,
                                tokenizer.sep_token_id, tokenizer.pad_token_id)
    return tokenizer, features


def _mask(masking_config: MaskingConfig) -> dict[str, np.ndarray]:
    tokenizer, features = _packed_batch()
    out = masking.apply_masking(
        features, tf.constant([3, 4], tf.int64), masking_config,
        vocabulary_size=tokenizer.vocabulary_size, mask_token_id=tokenizer.mask_token_id,
        special_ids=tokenizer.special_ids, progress=tf.constant(1.0))  # the end of a schedule
    return {k: np.asarray(v) for k, v in out.items()}


#: One value per field that must change the masks (base: `MaskingConfig()`).
MASKING_VARIANTS = {
    "strategy": "whole_word",
    "selection_rate": 0.5,
    "final_selection_rate": 0.5,
    "max_predictions": 5,
    "mask_token_rate": 0.0,
    "random_token_rate": 0.2,
}


#: Fields of the first passes and of the strategies that need their tables (`entity`,
#: `keyword`, `pmi`): tests/test_masking_strategies.py checks what each one does.
LISTED_STRATEGY_FIELDS = {"gazetteer", "entity_priority", "entity_max_words", "entity_min_count",
                          "keyword_strength", "pmi_max_ngrams", "pmi_min_count"}


def test_masking_variants_cover_every_field():
    assert set(MASKING_VARIANTS) | LISTED_STRATEGY_FIELDS == {
        f.name for f in dataclasses.fields(MaskingConfig)}


@pytest.mark.parametrize("field", sorted(MASKING_VARIANTS))
def test_each_masking_field_reaches_the_masks(field):
    base = _mask(MaskingConfig(max_predictions=12))
    changed = _mask(dataclasses.replace(MaskingConfig(max_predictions=12),
                                        **{field: MASKING_VARIANTS[field]}))
    differs = any(base[k].shape != changed[k].shape or not np.array_equal(base[k], changed[k])
                  for k in ("token_ids", "mask_positions", "mask_weights"))
    assert differs, f"MaskingConfig.{field} changed nothing"


# --- behaviour: each field of DataConfig changes the pretraining batches ------------------------
@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    words = "the cat sat on the mat . the dogs sat on a big mat . hello world !".split()
    rng = np.random.default_rng(0)
    paths = {}
    for name, lines in (("train", 120), ("other", 40)):
        text = []
        for i in range(lines):
            text.append(" ".join(rng.choice(words, size=rng.integers(3, 9))))
            if i % 4 == 3:
                text.append("")  # document boundary
        (root / f"{name}.txt").write_text("\n".join(text) + "\n")
        paths[name] = str(root / f"{name}.txt")
    return paths


def _batches(data: DataConfig, eval_split: bool = False, steps: int = 3):
    ds = pretraining_data.pretraining_dataset(
        tiny_tokenizer(), data, MaskingConfig(max_predictions=4), batch_size=4, seed=0,
        training=not eval_split, eval_split=eval_split)
    return [tf.nest.map_structure(np.asarray, batch) for batch in ds.take(steps)]


def _same(a, b) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)):
        if x.shape != y.shape or not np.array_equal(x, y):
            return False
    return True


def test_each_data_field_reaches_the_pipeline(corpora):
    base = DataConfig(corpus=[corpora["train"]], eval_holdout=0.0, max_sequence_length=16,
                      shuffle_buffer=1000)
    reference = _batches(base)
    variants = {
        "corpus": dict(corpus=[corpora["other"]]),
        "max_sequence_length": dict(max_sequence_length=12),
        "packing": dict(packing="one_line"),
        "shuffle_buffer": dict(shuffle_buffer=1),
        "eval_holdout": dict(eval_holdout=0.3),
    }
    for field, change in variants.items():
        assert not _same(reference, _batches(dataclasses.replace(base, **change))), (
            f"DataConfig.{field} changed nothing")
    # Evaluation text: the eval corpus when given, else the held-out lines.
    with_eval = dataclasses.replace(base, eval_corpus=[corpora["other"]])
    held_out = dataclasses.replace(base, eval_holdout=0.3)
    assert not _same(_batches(with_eval, eval_split=True), _batches(held_out, eval_split=True))
    # tfds, tfds_text_key, tfds_data_dir: tests/test_data.py::test_tfds_source reads a TFDS
    # dataset built locally through exactly these fields.
