"""Configuration dataclasses: one vocabulary of names from the command line to `config.json`.

The field names here are the names used everywhere else: constructor arguments of
`BertEncoder`, keys of `get_config()`, CLI flags (`--seq-len` sets
`data.max_sequence_length`), and the keys of the resolved `config.json` in a run directory.

An `Experiment` is a plain tree of dataclasses; `to_dict` / `from_dict` round-trip it through
JSON and `apply_overrides` applies typed `section.field=value` strings (the CLI's `--set`).
`validate()` checks a resolved experiment (types, ranges, names, combinations, then the paths
it names) in plain Python, before anything is read or written: `ConfigError` names the flag
that sets the field (`--batch-size must be >= 1, got 0`), or `section.field` for a field that
only `--set` or a recipe sets.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any


@dataclasses.dataclass
class EncoderConfig:
    """Shape of a BERT encoder (names match `BertEncoder`'s arguments)."""

    vocabulary_size: int = 8000
    num_layers: int = 2
    num_heads: int = 2
    hidden_dim: int = 128
    intermediate_dim: int = 512
    dropout: float = 0.1
    max_sequence_length: int = 512
    num_segments: int = 2
    # "gelu" (exact erf, Hugging Face BERT) or "gelu_approximate" (tanh form: the original
    # google-research/bert code and keras-hub); imported checkpoints keep their source's.
    activation: str = "gelu"


@dataclasses.dataclass
class TokenizerConfig:
    """How text becomes word pieces."""

    vocab: str | None = None  # a vocab.txt to load; None learns one from the corpus
    vocabulary_size: int = 8000  # target size when learning a vocabulary
    lower_case: bool = True


@dataclasses.dataclass
class MaskingConfig:
    """Dynamic MLM masking (BERT: 15% selected, of which 80% [MASK], 10% random, 10% kept)."""

    # "random", "whole_word", "span", ... (MASKING_STRATEGIES) or a mixture "span:0.5,random:0.5"
    strategy: str = "random"
    selection_rate: float = 0.15
    final_selection_rate: float | None = None  # a linear schedule to this rate; None: constant
    max_predictions: int = 20
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1
    # the remaining 1 - mask_token_rate - random_token_rate keep the original token
    # entity, keyword, pmi: lists from a first pass over the training text (corpus_statistics)
    gazetteer: str | None = None  # entities, one a line; None: CoNLL tags or capitalised runs
    entity_priority: float = 3.0  # log-odds bonus of an entity over a word (e^3 ~ 20x)
    entity_max_words: int = 6  # longer entities are not matched
    entity_min_count: int = 2  # capitalised runs seen fewer times are not entities
    keyword_strength: float = 1.0  # selection odds ~ (TF-IDF)^strength; 0 = uniform
    pmi_max_ngrams: int = 20000  # n-grams of highest PMI kept
    pmi_min_count: int = 10  # n-grams seen fewer times have no PMI


@dataclasses.dataclass
class DataConfig:
    """Where pretraining text comes from and how it is packed into sequences."""

    corpus: list[str] = dataclasses.field(default_factory=list)  # globs; [] = embedded corpus
    eval_corpus: list[str] = dataclasses.field(default_factory=list)
    # With no eval corpus, this fraction of lines (chosen by a hash of the line, so the same
    # lines every run) is held out of training and used for evaluation.
    eval_holdout: float = 0.01
    tfds: str | None = None  # "NAME:SPLIT", e.g. "wikipedia/20230601.en:train"
    tfds_text_key: str = "text"
    tfds_data_dir: str | None = None
    max_sequence_length: int = 128
    packing: str = "full_sentences"  # or "one_line"
    shuffle_buffer: int = 10000
    # Corpus lines that are not UTF-8 or over 1 MiB: an error naming the file and line
    # (False), or skipped and counted in the log (True).
    skip_bad_lines: bool = False

    @property
    def holdout_active(self) -> bool:
        """Whether evaluation text is held out of the training corpus."""
        return self.eval_holdout > 0 and not self.eval_corpus


@dataclasses.dataclass
class TrainConfig:
    """Optimisation and run-loop settings."""

    preset: str = "bert_tiny"  # the encoder size without `init`
    # a pretrain or import run to continue from (its vocabulary, casing, encoder and MLM
    # head); None: a random `preset` encoder and a vocabulary of its own
    init: str | None = None
    # with `init` from a run without an MLM head (an import of an encoder-only checkpoint):
    # steps that train the fresh head alone, encoder frozen, at lr 1e-3, before `steps` of
    # continued pretraining (a random head's gradients would otherwise scramble the encoder);
    # 0: none. Not used when the run has a head or when resuming.
    head_warmup_steps: int = 200
    batch_size: int = 32  # global batch, split across replicas
    steps: int = 1000
    save_every: int = 100  # steps per Keras "epoch" = checkpoint interval
    eval_steps: int = 20  # batches of eval data at each checkpoint
    learning_rate: float | None = None  # None: the preset's default (presets.py)
    warmup_steps: int = -1  # -1: 10% of steps
    weight_decay: float = 0.01
    clipnorm: float = 1.0
    adam_epsilon: float = 1e-6
    seed: int = 0
    strategy: str = "auto"  # auto, default, mirrored, multi_worker, tpu
    # auto, float32, mixed_bfloat16 or mixed_float16 (tfmask.train.precision); config.json
    # holds what auto resolved to
    precision: str = "float32"
    jit_compile: bool = False
    steps_per_execution: int = 1
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism()


class _JsonConfig:
    """`to_dict` / `from_dict` / `save` / `load` for a dataclass of dataclass sections."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            factory = f.default_factory
            if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
                kwargs[f.name] = _build(factory, d[f.name])
            else:  # plain values: FinetuneExperiment.task, .labels
                kwargs[f.name] = d[f.name]
        return cls(**kwargs)

    def save(self, path: str) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=2)

    @classmethod
    def load(cls, path: str):
        with open(path) as fh:
            return cls.from_dict(json.load(fh))


@dataclasses.dataclass
class Experiment(_JsonConfig):
    """Everything a pretraining run needs; `config.json` is `to_dict()` of this."""

    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    masking: MaskingConfig = dataclasses.field(default_factory=MaskingConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Raises `ConfigError` (naming the flag) for the first field that cannot work: types,
        names, ranges, combinations, then the files it names (`--corpus`, `--vocab`)."""
        from tfmask.validation import validate_pretraining

        validate_pretraining(self)


@dataclasses.dataclass
class FinetuneDataConfig:
    """Where fine-tuning examples come from and how they become sequences."""

    train: str | None = None  # a CoNLL / TSV / CSV file; None (and no tfds): embedded data
    valid: str | None = None
    tfds: str | None = None  # "conll2003", "glue/sst2" or "imdb_reviews"
    tfds_data_dir: str | None = None
    tfds_train_split: str = "train"
    tfds_valid_split: str = "validation"
    tag_column: int = -1  # NER: the column holding the tag
    text_column: str | None = None  # sentiment: column name or index (as text)
    text_pair_column: str | None = None  # classify: a pair's second text (TFDS: feature)
    label_column: str | None = None
    max_sequence_length: int = 128
    window_stride: int | None = None  # NER windows: None = half the window
    truncation: str = "head"  # sentiment: "head" or "head_tail"
    length_buckets: list[int] = dataclasses.field(default_factory=list)  # [] = no bucketing
    max_train_examples: int = 0  # 0 = all; else the first N (a budget for quick runs)


@dataclasses.dataclass
class FinetuneTrainConfig:
    """Optimisation of a fine-tuning run."""

    init: str | None = None  # a run directory (pretrain or import); None = random init
    preset: str = "bert_tiny"  # the encoder size when there is no --init
    vocabulary_size: int = 8000  # learned from the training text when there is no --init
    batch_size: int = 32
    epochs: int = 3
    learning_rate: float = 5e-5
    warmup_steps: int = -1  # -1: 10% of the steps
    weight_decay: float = 0.01
    clipnorm: float = 1.0
    adam_epsilon: float = 1e-6
    layer_decay: float = 1.0  # layer-wise learning-rate decay; 1 = off
    freeze_epochs: int = 0  # epochs that train only the head (the encoder frozen)
    mask_rate: float = 0.0  # masking augmentation: fraction of input pieces -> [MASK]
    dropout: float = 0.1  # before the classifier
    # dropout inside the encoder (embeddings, attention, residual branches); None keeps the
    # rate the encoder came with (--init's config or the preset)
    encoder_dropout: float | None = None
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0 = off
    seed: int = 0
    strategy: str = "auto"  # auto, default, mirrored, multi_worker, tpu (as TrainConfig)
    precision: str = "float32"  # as TrainConfig.precision
    jit_compile: bool = False
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism()


@dataclasses.dataclass
class FinetuneExperiment(_JsonConfig):
    """Everything a fine-tuning run needs; `config.json` of a fine-tuning run is `to_dict()`.

    `encoder`, `tokenizer` and `labels` are filled in by `finetune` (from `--init` or the
    preset), so the run directory records the model it trained."""

    task: str = "ner"  # "ner", "sentiment" or "classify" (one text or a pair)
    data: FinetuneDataConfig = dataclasses.field(default_factory=FinetuneDataConfig)
    train: FinetuneTrainConfig = dataclasses.field(default_factory=FinetuneTrainConfig)
    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    labels: list[str] = dataclasses.field(default_factory=list)

    def validate(self) -> None:
        """Raises `ConfigError` (naming the flag) for the first field that cannot work: types,
        names, ranges, then `--init` (a run with `INIT_FILES`, enough positions for
        `--seq-len`), then `--train` / `--valid`."""
        from tfmask.validation import validate_finetuning

        validate_finetuning(self)


#: Fields renamed since a config.json could have been written: old name -> (new name, how an
#: old value reads). `mixed_precision: null` meant float32.
RENAMED_FIELDS = {"mixed_precision": ("precision", lambda value: value or "float32")}


def _build(factory, values: dict[str, Any]):
    known = {f.name for f in dataclasses.fields(factory)}
    values = dict(values)
    for old, (new, read) in RENAMED_FIELDS.items():
        if old in values and new in known:
            values[new] = read(values.pop(old))
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"Unknown {factory.__name__} fields: {sorted(unknown)}")
    return factory(**values)


def _parse_value(text: str, current: Any, field_type: str):
    """Parses `text` to the type of the field it overrides."""
    if text.lower() in ("none", "null") and ("None" in field_type or current is None):
        return None
    if isinstance(current, bool) or field_type.startswith("bool"):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {text!r}")
    if isinstance(current, int) or field_type.startswith("int"):
        return int(text)
    if isinstance(current, float) or field_type.startswith("float"):
        return float(text)
    if isinstance(current, list) or field_type.startswith("list"):
        items = [t.strip() for t in text.split(",") if t.strip()]
        return [int(t) for t in items] if field_type.startswith("list[int]") else items
    return text


def load_recipe(path: str, expected: type | None = None):
    """Runs a recipe file's `config()` (pipelines/*.py) and returns the experiment it builds.

    Any error in the file (a syntax error, an exception while it runs or in `config()`, a
    `config()` that returns something else than an `expected` instance) is a `ConfigError`
    that names the file and, where there is one, the line."""
    import importlib.util

    if not os.path.isfile(path):
        raise ConfigError(f"--recipe {path!r}: no such file")
    spec = importlib.util.spec_from_file_location("tfmask_recipe", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        if not hasattr(module, "config"):
            raise ConfigError(f"--recipe {path!r} defines no config() function")
        experiment = module.config()
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001  whatever the recipe's code raises
        raise ConfigError(_recipe_error(path, e)) from e
    if expected is not None and not isinstance(experiment, expected):
        raise ConfigError(f"--recipe {path!r}: config() returned {type(experiment).__name__}, "
                          f"not a tfmask.config.{expected.__name__}")
    return experiment


def _recipe_error(path: str, error: Exception) -> str:
    """`--recipe FILE:LINE: what went wrong`, the line being the recipe's own."""
    import traceback

    frames = [f.lineno for f in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(f.filename) == os.path.abspath(path)]
    line = error.lineno if isinstance(error, SyntaxError) else (frames or [None])[-1]
    message = error.msg if isinstance(error, SyntaxError) else str(error)
    return f"--recipe {path}{f':{line}' if line else ''}: {type(error).__name__}: {message}"


def apply_overrides(experiment, overrides: list[str]):
    """Applies `section.field=value` strings, typed by the field they set.

    Example: `apply_overrides(exp, ["train.batch_size=64", "masking.strategy=whole_word"])`.
    """
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set expects section.field=value, got {item!r}")
        key, text = item.split("=", 1)
        section_name, field_name = key.split(".", 1)
        section = getattr(experiment, section_name, None)
        if section is None or not dataclasses.is_dataclass(section):
            sections = [f.name for f in dataclasses.fields(experiment)]
            raise ValueError(f"--set {item!r}: unknown section {section_name!r}; one of {sections}")
        fields = {f.name: f for f in dataclasses.fields(section)}
        if field_name not in fields:
            raise ValueError(
                f"--set {item!r}: {section_name} has no field {field_name!r}; "
                f"one of {sorted(fields)}"
            )
        current = getattr(section, field_name)
        try:
            value = _parse_value(text, current, str(fields[field_name].type))
        except ValueError as e:
            raise ValueError(f"--set {item!r}: {e}") from None
        setattr(section, field_name, value)
    return experiment


# ----------------------------------------------------------------------------------------------
# Validation: plain Python, before anything is read, written or loaded
# ----------------------------------------------------------------------------------------------
TASKS = ("ner", "sentiment", "classify")  # classify: one text or a sentence pair
MASKING_STRATEGIES = ("random", "whole_word", "span", "entity", "keyword", "pmi")


def parse_masking_strategy(strategy: str) -> list[tuple[str, float]]:
    """`--masking`: a strategy name, or a mixture `NAME:WEIGHT,NAME:WEIGHT` (each sequence
    draws one, with odds proportional to the weights) -> `[(name, weight), ...]`."""
    components = []
    for part in str(strategy).split(","):
        name, _, weight = part.strip().partition(":")
        if name not in MASKING_STRATEGIES:
            raise ConfigError(f"--masking must be one of {', '.join(MASKING_STRATEGIES)} or a "
                              f"mixture such as span:0.5,random:0.5; got {strategy!r}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            value = -1.0
        if not value > 0 or (len(strategy.split(",")) > 1 and not weight):
            raise ConfigError(f"--masking {strategy}: each part of a mixture is NAME:WEIGHT "
                              "with a weight > 0, e.g. span:0.5,random:0.5")
        components.append((name, value))
    if len({name for name, _ in components}) < len(components):
        raise ConfigError(f"--masking {strategy}: a strategy appears twice")
    return components
PACKINGS = ("full_sentences", "one_line")
TRUNCATIONS = ("head", "head_tail")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
#: What `--init` reads from a pretrain or import run.
INIT_FILES = ("config.json", "encoder.keras", "vocab.txt")

#: `section.field` -> the flag that sets it, so that a message names what the user typed (the
#: CLI copies each flag that was given onto its field with these).
PRETRAIN_FLAGS = {
    "data.corpus": "--corpus", "data.eval_corpus": "--eval-corpus",
    "data.eval_holdout": "--eval-holdout", "data.tfds": "--tfds",
    "data.tfds_text_key": "--text-key", "data.tfds_data_dir": "--tfds-data-dir",
    "data.max_sequence_length": "--seq-len", "data.packing": "--packing",
    "data.skip_bad_lines": "--skip-bad-lines",
    "tokenizer.vocab": "--vocab", "tokenizer.vocabulary_size": "--vocab-size",
    "masking.strategy": "--masking", "masking.selection_rate": "--selection-rate",
    "masking.max_predictions": "--max-predictions",
    "masking.final_selection_rate": "--final-selection-rate",
    "masking.mask_token_rate": "--mask-token-rate",
    "masking.random_token_rate": "--random-token-rate",
    "masking.gazetteer": "--gazetteer", "masking.entity_priority": "--entity-priority",
    "masking.keyword_strength": "--keyword-strength",
    "masking.pmi_max_ngrams": "--pmi-ngrams", "masking.pmi_min_count": "--pmi-min-count",
    "train.init": "--init", "train.head_warmup_steps": "--head-warmup-steps",
    "train.preset": "--preset", "train.batch_size": "--batch-size", "train.steps": "--steps",
    "train.save_every": "--save-every", "train.eval_steps": "--eval-steps",
    "train.learning_rate": "--learning-rate", "train.warmup_steps": "--warmup-steps",
    "train.weight_decay": "--weight-decay", "train.seed": "--seed",
    "train.strategy": "--strategy", "train.precision": "--precision",
    "train.jit_compile": "--jit-compile", "train.deterministic": "--deterministic",
}
FINETUNE_FLAGS = {
    "data.train": "--train", "data.valid": "--valid", "data.tfds": "--tfds",
    "data.tfds_data_dir": "--tfds-data-dir", "data.tfds_train_split": "--tfds-train-split",
    "data.tfds_valid_split": "--tfds-valid-split", "data.tag_column": "--tag-column",
    "data.window_stride": "--window-stride", "data.text_column": "--text-column",
    "data.text_pair_column": "--text-pair-column",
    "data.label_column": "--label-column", "data.truncation": "--truncation",
    "data.max_sequence_length": "--seq-len", "data.max_train_examples": "--max-train-examples",
    "train.init": "--init", "train.preset": "--preset", "train.epochs": "--epochs",
    "train.batch_size": "--batch-size", "train.learning_rate": "--learning-rate",
    "train.warmup_steps": "--warmup-steps", "train.weight_decay": "--weight-decay",
    "train.layer_decay": "--layer-decay", "train.freeze_epochs": "--freeze-epochs",
    "train.mask_rate": "--mask-rate", "train.dropout": "--dropout",
    "train.encoder_dropout": "--encoder-dropout",
    "train.early_stopping_patience": "--early-stopping", "train.seed": "--seed",
    "train.strategy": "--strategy",
    "train.precision": "--precision", "train.jit_compile": "--jit-compile",
    "train.deterministic": "--deterministic",
}


class ConfigError(ValueError):
    """A value that cannot work (wrong type, out of range, unknown name, a combination that
    contradicts itself) or a path that is not there; the message names the flag."""
