"""Configuration dataclasses: one vocabulary of names from the command line to `config.json`.

The field names here are the names used everywhere else: constructor arguments of
`BertEncoder`, keys of `get_config()`, CLI flags (`--seq-len` sets
`data.max_sequence_length`), and the keys of the resolved `config.json` in a run directory.

An `Experiment` is a plain tree of dataclasses; `to_dict` / `from_dict` round-trip it through
JSON and `apply_overrides` applies typed `section.field=value` strings (the CLI's `--set`).
"""

from __future__ import annotations

import dataclasses
import json
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
    mixed_precision: str | None = None
    jit_compile: bool = False


@dataclasses.dataclass
class FinetuneExperiment(_JsonConfig):
    """Everything a fine-tuning run needs; `config.json` of a fine-tuning run is `to_dict()`.

    `encoder`, `tokenizer` and `labels` are filled in by `finetune` (from `--init` or the
    preset), so the run directory records the model it trained."""

    task: str = "ner"  # "ner" or "sentiment"
    data: FinetuneDataConfig = dataclasses.field(default_factory=FinetuneDataConfig)
    train: FinetuneTrainConfig = dataclasses.field(default_factory=FinetuneTrainConfig)
    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    labels: list[str] = dataclasses.field(default_factory=list)


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
        return [t for t in text.split(",") if t]
    return text


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
