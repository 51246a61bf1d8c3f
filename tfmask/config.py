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
import glob
import json
import math
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

    strategy: str = "random"  # "random", "whole_word" or "span"
    selection_rate: float = 0.15
    max_predictions: int = 20
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1
    # the remaining 1 - mask_token_rate - random_token_rate keep the original token


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

    preset: str = "bert_tiny"
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
    mixed_precision: str | None = None  # None, "mixed_float16", "mixed_bfloat16"
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
        _validate_pretraining(self)


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
    mixed_precision: str | None = None
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
        _validate_finetuning(self)


def _build(factory, values: dict[str, Any]):
    known = {f.name for f in dataclasses.fields(factory)}
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
MASKING_STRATEGIES = ("random", "whole_word", "span")
PACKINGS = ("full_sentences", "one_line")
TRUNCATIONS = ("head", "head_tail")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
MIXED_PRECISIONS = ("mixed_float16", "mixed_bfloat16")
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
    "masking.mask_token_rate": "--mask-token-rate",
    "masking.random_token_rate": "--random-token-rate",
    "train.preset": "--preset", "train.batch_size": "--batch-size", "train.steps": "--steps",
    "train.save_every": "--save-every", "train.eval_steps": "--eval-steps",
    "train.learning_rate": "--learning-rate", "train.warmup_steps": "--warmup-steps",
    "train.weight_decay": "--weight-decay", "train.seed": "--seed",
    "train.strategy": "--strategy", "train.mixed_precision": "--mixed-precision",
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
    "train.mixed_precision": "--mixed-precision", "train.jit_compile": "--jit-compile",
    "train.deterministic": "--deterministic",
}


class ConfigError(ValueError):
    """A value that cannot work (wrong type, out of range, unknown name, a combination that
    contradicts itself) or a path that is not there; the message names the flag."""


def _is(value, annotation: str) -> bool:
    """Whether `value` fits one type of a field's annotation ("int", "list[str]", ...)."""
    if annotation == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # bool is an int to Python, never to a config
        return False
    if annotation.startswith("list["):
        return isinstance(value, list) and all(_is(v, annotation[5:-1]) for v in value)
    kinds = {"int": int, "float": (int, float), "str": str, "None": type(None)}
    return isinstance(value, kinds[annotation])


class _Checks:
    """Checks on one experiment whose messages name the flag that sets each field."""

    def __init__(self, experiment, flags: dict[str, str]):
        self.experiment, self.flags = experiment, flags

    def name(self, key: str) -> str:
        return self.flags.get(key, key)

    def value(self, key: str):
        section, field = key.split(".")
        return getattr(getattr(self.experiment, section), field)

    @staticmethod
    def require(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    def types(self) -> None:
        """Every field holds a value of its annotated type (a recipe or `--set` may not)."""
        for section in dataclasses.fields(self.experiment):
            value, factory = getattr(self.experiment, section.name), section.default_factory
            if not dataclasses.is_dataclass(factory):  # a plain field: task, labels
                self.require(_is(value, str(section.type)), f"{section.name} must be "
                             f"{section.type}, got {value!r}")
                continue
            self.require(isinstance(value, factory), f"{section.name} must be a "
                         f"{factory.__name__}, got {value!r}")
            for f in dataclasses.fields(value):
                key = f"{section.name}.{f.name}"
                options = [t.strip() for t in str(f.type).split("|")]
                self.require(any(_is(self.value(key), t) for t in options),
                             f"{self.name(key)} must be {f.type}, got {self.value(key)!r}")
                self.require(not isinstance(self.value(key), float)
                             or math.isfinite(self.value(key)),
                             f"{self.name(key)} must be a finite number, got "
                             f"{self.value(key)}")

    def at_least(self, key: str, low, strictly: bool = False) -> None:
        """`value >= low` (`> low` when `strictly`); None passes (not set)."""
        value = self.value(key)
        ok = value is None or (value > low if strictly else value >= low)
        self.require(ok, f"{self.name(key)} must be {'>' if strictly else '>='} {low}, "
                         f"got {value}")

    def within(self, key: str, low, high, *, open_low=False, open_high=False) -> None:
        """`low <= value <= high`, either end open when asked; None passes (not set)."""
        value = self.value(key)
        if value is None:
            return
        ok = (value > low if open_low else value >= low) and (
            value < high if open_high else value <= high)
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        self.require(ok, f"{self.name(key)} must be in {interval}, got {value}")

    def one_of(self, key: str, names) -> None:
        value = self.value(key)
        self.require(value is None or value in names,
                     f"{self.name(key)} must be one of {', '.join(names)}; got {value!r}")

    def optimizer(self) -> None:
        """The AdamW settings pretraining and fine-tuning share."""
        for key in ("train.learning_rate", "train.clipnorm", "train.adam_epsilon"):
            self.at_least(key, 0, strictly=True)
        warmup = self.value("train.warmup_steps")
        self.require(warmup >= -1, f"{self.name('train.warmup_steps')} must be >= 0 (or -1: "
                                   f"10% of the steps), got {warmup}")
        self.at_least("train.weight_decay", 0)
        self.within("train.seed", 0, 2**32 - 1)  # NumPy's seed range
        self.one_of("train.mixed_precision", MIXED_PRECISIONS)

    def vocabulary_size(self, key: str) -> None:
        """A vocabulary to learn holds the 5 special tokens ([PAD], [UNK], [CLS], [SEP],
        [MASK]) and at least one piece."""
        value = self.value(key)
        self.require(value > 5, f"{self.name(key)} must be > 5 (the vocabulary holds the 5 "
                                f"special tokens and learned pieces), got {value}")

    def sequence_length(self) -> None:
        self.at_least("data.max_sequence_length", 3)  # [CLS], one piece, [SEP]

    def file(self, key: str) -> None:
        """A path field, when set, names a file."""
        path = self.value(key)
        self.require(not path or os.path.isfile(path), f"{self.name(key)} {path}: no such file")

    def vocabulary_file(self, key: str) -> None:
        """A vocabulary file, when set, is UTF-8 text with the special tokens."""
        from tfmask.text.text_files import vocabulary_problem

        problem = self.value(key) and vocabulary_problem(self.value(key))
        self.require(not problem, f"{self.name(key)} {problem}")

    def globs(self, key: str) -> None:
        """Every pattern of a list field matches at least one file."""
        for pattern in self.value(key):
            found = glob.glob(os.path.expanduser(pattern), recursive=True)
            folder = "" if not found or not all(map(os.path.isdir, found)) else (
                f" (only a folder: give its files, e.g. {os.path.join(pattern, '*.txt')!r})")
            self.require(any(map(os.path.isfile, found)),
                         f"{self.name(key)} {pattern!r} matches no file{folder}")


def check_run_dir(run_dir: str, names=INIT_FILES, what="a finished tfmask pretrain or import "
                  "run", flag: str = "") -> None:
    """Raises `ConfigError` unless `run_dir` is a directory that holds every file of `names`."""
    where = f"{flag} {run_dir}".strip()
    if not os.path.isdir(run_dir):
        raise ConfigError(f"{where}: no such run directory")
    missing = [n for n in names if not os.path.exists(os.path.join(run_dir, n))]
    if missing:
        raise ConfigError(f"{where}: no {', '.join(missing)} (not {what}?)")


def _validate_pretraining(experiment: Experiment) -> None:
    from tfmask import presets

    c, d, t = _Checks(experiment, PRETRAIN_FLAGS), experiment.data, experiment.train
    c.types()
    c.one_of("train.preset", presets.PRESETS)
    c.one_of("train.strategy", STRATEGIES)
    c.one_of("masking.strategy", MASKING_STRATEGIES)
    c.one_of("data.packing", PACKINGS)
    for key in ("train.batch_size", "train.steps", "train.save_every", "train.eval_steps",
                "train.steps_per_execution", "tokenizer.vocabulary_size",
                "masking.max_predictions", "data.shuffle_buffer"):
        c.at_least(key, 1)
    c.vocabulary_size("tokenizer.vocabulary_size")
    c.require(t.steps % t.save_every == 0,
              f"--steps ({t.steps}) must be a multiple of --save-every ({t.save_every}): one "
              "Keras epoch is one checkpoint interval")
    c.optimizer()
    c.require(t.warmup_steps <= t.steps,
              f"--warmup-steps ({t.warmup_steps}) must be <= --steps ({t.steps})")
    c.within("encoder.dropout", 0, 1, open_high=True)
    c.within("masking.selection_rate", 0, 1, open_low=True)
    c.within("masking.mask_token_rate", 0, 1)
    c.within("masking.random_token_rate", 0, 1)
    m = experiment.masking
    c.require(m.mask_token_rate + m.random_token_rate <= 1,
              f"--mask-token-rate + --random-token-rate must be <= 1 (the rest of the selected "
              f"pieces stay as they are), got {m.mask_token_rate} + {m.random_token_rate}")
    c.sequence_length()
    c.require(m.max_predictions <= d.max_sequence_length,
              f"--max-predictions ({m.max_predictions}) must be <= --seq-len "
              f"({d.max_sequence_length})")
    c.within("data.eval_holdout", 0, 1, open_high=True)
    c.require(not (d.corpus and d.tfds), "give --corpus or --tfds, not both")
    c.require(not d.tfds or ":" in d.tfds,
              f"--tfds expects NAME:SPLIT (e.g. wikipedia/20230601.en:train), got {d.tfds!r}")
    c.globs("data.corpus")
    c.globs("data.eval_corpus")
    c.file("tokenizer.vocab")
    c.vocabulary_file("tokenizer.vocab")


def _validate_finetuning(experiment: FinetuneExperiment) -> None:
    from tfmask import presets

    c, d, t = _Checks(experiment, FINETUNE_FLAGS), experiment.data, experiment.train
    c.types()
    c.require(experiment.task in TASKS,
              f"task must be one of {', '.join(TASKS)}; got {experiment.task!r}")
    c.one_of("train.preset", presets.PRESETS)
    c.one_of("data.truncation", TRUNCATIONS)
    c.one_of("train.strategy", STRATEGIES)
    for key in ("train.batch_size", "train.epochs", "train.vocabulary_size"):
        c.at_least(key, 1)
    c.vocabulary_size("train.vocabulary_size")
    for key in ("train.freeze_epochs", "train.early_stopping_patience",
                "data.max_train_examples"):
        c.at_least(key, 0)
    c.require(not t.freeze_epochs or t.freeze_epochs < t.epochs,
              f"--freeze-epochs ({t.freeze_epochs}) must be less than --epochs ({t.epochs})")
    c.optimizer()
    c.within("train.layer_decay", 0, 1, open_low=True)
    c.within("train.mask_rate", 0, 1)
    c.within("train.dropout", 0, 1, open_high=True)
    c.within("train.encoder_dropout", 0, 1, open_high=True)
    c.sequence_length()
    c.within("data.window_stride", 1, d.max_sequence_length - 2)
    for bucket in d.length_buckets:
        c.require(bucket >= 1, f"data.length_buckets must hold lengths >= 1, got {bucket}")
    if t.init:  # before the data's paths: a wrong --init is what a user would fix first
        check_run_dir(t.init, flag="--init")
        try:
            with open(os.path.join(t.init, INIT_FILES[0])) as fh:
                positions = json.load(fh)["encoder"]["max_sequence_length"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"--init {t.init}: unreadable {INIT_FILES[0]} ({e!r})") from None
        c.require(d.max_sequence_length <= positions,
                  f"--seq-len {d.max_sequence_length} exceeds the encoder's {positions} "
                  "positions")
    c.require(not d.text_pair_column or experiment.task == "classify",
              f"--text-pair-column is for sentence pairs: tfmask finetune classify, not "
              f"{experiment.task}")
    c.require(bool(d.valid) or not d.train, "--valid is required with --train (validation "
              "picks the best epoch and is what metrics.json reports)")
    c.require(bool(d.train) or not d.valid, "--valid needs --train (a validation file goes "
              "with its training file)")
    c.file("data.train")
    c.file("data.valid")
