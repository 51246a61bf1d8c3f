"""`validate()` of the experiments in `tfmask.config`: plain-Python checks (types, names, ranges,
combinations, then the paths a config names) whose `ConfigError` names the flag that sets each
field (`--batch-size must be >= 1, got 0`), or `section.field` for one only `--set` sets."""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os

from tfmask.config import (FINETUNE_FLAGS, INIT_FILES, PRECISIONS,
                           PACKINGS, PRETRAIN_FLAGS, STRATEGIES, TASKS, TRUNCATIONS, ConfigError,
                           Experiment, FinetuneExperiment, parse_masking_strategy)


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
        self.one_of("train.precision", PRECISIONS)

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


def check_init(c: _Checks) -> None:
    """`train.init`, when set, is a run with `INIT_FILES` whose encoder has positions for
    `--seq-len` (fine-tuning, and pretraining that continues from the run)."""
    init, length = c.value("train.init"), c.value("data.max_sequence_length")
    if not init:
        return
    check_run_dir(init, flag="--init")
    try:
        with open(os.path.join(init, INIT_FILES[0])) as fh:
            positions = json.load(fh)["encoder"]["max_sequence_length"]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"--init {init}: unreadable {INIT_FILES[0]} ({e!r})") from None
    c.require(length <= positions,
              f"--seq-len {length} exceeds the encoder's {positions} positions (--init {init})")


def validate_pretraining(experiment: Experiment) -> None:
    from tfmask import presets

    c, d, t = _Checks(experiment, PRETRAIN_FLAGS), experiment.data, experiment.train
    c.types()
    c.one_of("train.preset", presets.PRESETS)
    c.one_of("train.strategy", STRATEGIES)
    parse_masking_strategy(experiment.masking.strategy)
    c.one_of("data.packing", PACKINGS)
    c.at_least("train.head_warmup_steps", 0)
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
    c.within("masking.final_selection_rate", 0, 1, open_low=True)
    c.within("masking.mask_token_rate", 0, 1)
    c.within("masking.random_token_rate", 0, 1)
    for key in ("masking.entity_max_words", "masking.entity_min_count",
                "masking.pmi_max_ngrams", "masking.pmi_min_count"):
        c.at_least(key, 1)
    c.at_least("masking.keyword_strength", 0)
    m = experiment.masking
    c.require(not m.gazetteer or "entity" in [n for n, _ in parse_masking_strategy(m.strategy)],
              f"--gazetteer is read by --masking entity only, not {m.strategy}")
    c.file("masking.gazetteer")
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
    c.require(not (t.init and experiment.tokenizer.vocab),
              f"--vocab conflicts with --init {t.init}: a continued run keeps its vocabulary")
    check_init(c)
    c.globs("data.corpus")
    c.globs("data.eval_corpus")
    c.file("tokenizer.vocab")
    c.vocabulary_file("tokenizer.vocab")


def validate_finetuning(experiment: FinetuneExperiment) -> None:
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
    check_init(c)  # before the data's paths: a wrong --init is what a user would fix first
    c.require(not d.text_pair_column or experiment.task == "classify",
              f"--text-pair-column is for sentence pairs: tfmask finetune classify, not "
              f"{experiment.task}")
    c.require(bool(d.valid) or not d.train, "--valid is required with --train (validation "
              "picks the best epoch and is what metrics.json reports)")
    c.require(bool(d.train) or not d.valid, "--valid needs --train (a validation file goes "
              "with its training file)")
    c.file("data.train")
    c.file("data.valid")
