"""Experiment dataclasses: JSON round trip, typed `--set` overrides, preset lookup, and
`validate()` (types, ranges, names, combinations, paths; the flag named in the message)."""

import dataclasses
import json
import os
import re

import pytest

from helpers import constructor_params
from tfmask import presets
from tfmask.config import (ConfigError, DataConfig, EncoderConfig, Experiment,
                           FinetuneExperiment, MaskingConfig, TokenizerConfig, TrainConfig,
                           apply_overrides, load_recipe)
from tfmask.model.encoder import BertEncoder


def _non_default_experiment() -> Experiment:
    """Every section with values that differ from the defaults, of every field type."""
    return Experiment(
        encoder=EncoderConfig(vocabulary_size=123, num_layers=3, num_heads=4, hidden_dim=64,
                              intermediate_dim=96, dropout=0.0, max_sequence_length=77,
                              num_segments=3, activation="gelu_approximate"),
        tokenizer=TokenizerConfig(vocab="/tmp/vocab.txt", vocabulary_size=5000,
                                  lower_case=False),
        masking=MaskingConfig(strategy="whole_word", selection_rate=0.2, final_selection_rate=0.1,
                              gazetteer="g.txt", entity_priority=1.0, entity_max_words=4,
                              entity_min_count=3, keyword_strength=2.0, pmi_max_ngrams=50,
                              pmi_min_count=2, max_predictions=7,
                              mask_token_rate=0.7, random_token_rate=0.2),
        data=DataConfig(corpus=["a/*.txt", "b.txt"], eval_corpus=["c.txt"], eval_holdout=0.0,
                        tfds="wikipedia/20230601.en:train", tfds_text_key="body",
                        tfds_data_dir="/tmp/tfds", max_sequence_length=64,
                        packing="one_line", shuffle_buffer=10, skip_bad_lines=True),
        train=TrainConfig(preset="bert_mini", init="/tmp/minilm", head_warmup_steps=7, batch_size=8, steps=10, save_every=5,
                          eval_steps=2, learning_rate=5e-4, warmup_steps=3, weight_decay=0.0,
                          clipnorm=0.5, adam_epsilon=1e-8, seed=7, strategy="mirrored",
                          precision="mixed_float16", jit_compile=True,
                          steps_per_execution=4, deterministic=True),
    )


def test_non_default_experiment_sets_every_field():
    exp, default = _non_default_experiment(), Experiment()
    for section in dataclasses.fields(Experiment):
        for f in dataclasses.fields(getattr(exp, section.name)):
            assert getattr(getattr(exp, section.name), f.name) != getattr(
                getattr(default, section.name), f.name), f"{section.name}.{f.name}"


def test_to_dict_from_dict_round_trip():
    exp = _non_default_experiment()
    d = exp.to_dict()
    assert set(d) == {"encoder", "tokenizer", "masking", "data", "train"}
    assert d["train"]["batch_size"] == 8 and d["data"]["corpus"] == ["a/*.txt", "b.txt"]
    assert Experiment.from_dict(json.loads(json.dumps(d))) == exp
    assert Experiment.from_dict(Experiment().to_dict()) == Experiment()


def test_save_load_round_trip(tmp_path):
    exp = _non_default_experiment()
    path = tmp_path / "config.json"
    exp.save(str(path))
    assert json.loads(path.read_text()) == exp.to_dict()  # plain JSON, readable by anyone
    assert Experiment.load(str(path)) == exp


def test_from_dict_fills_missing_sections_and_fields_with_defaults():
    exp = Experiment.from_dict({"train": {"batch_size": 4}})
    assert exp.train.batch_size == 4
    assert exp.train.steps == TrainConfig().steps
    assert exp.encoder == EncoderConfig()


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="TrainConfig.*batchsize"):
        Experiment.from_dict({"train": {"batchsize": 4}})


def test_holdout_active():
    assert DataConfig().holdout_active
    assert not DataConfig(eval_holdout=0.0).holdout_active
    assert not DataConfig(eval_corpus=["x.txt"]).holdout_active


def test_encoder_config_names_are_bert_encoder_arguments():
    """One vocabulary: every EncoderConfig field is a BertEncoder argument of the same name."""
    fields = {f.name for f in dataclasses.fields(EncoderConfig)}
    assert fields <= set(constructor_params(BertEncoder))
    encoder = BertEncoder.from_encoder_config(EncoderConfig(
        vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=10))
    config = encoder.get_config()
    assert {k: config[k] for k in fields} == dataclasses.asdict(EncoderConfig(
        vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=10))


# ----------------------------------------------------------------------------------------------
# apply_overrides
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("item, section, field, expected", [
    ("train.batch_size=64", "train", "batch_size", 64),
    ("train.warmup_steps=-1", "train", "warmup_steps", -1),
    ("train.learning_rate=3e-4", "train", "learning_rate", 3e-4),
    ("train.clipnorm=2", "train", "clipnorm", 2.0),
    ("masking.selection_rate=0.2", "masking", "selection_rate", 0.2),
    ("train.jit_compile=true", "train", "jit_compile", True),
    ("train.jit_compile=Yes", "train", "jit_compile", True),
    ("tokenizer.lower_case=false", "tokenizer", "lower_case", False),
    ("tokenizer.lower_case=0", "tokenizer", "lower_case", False),
    ("train.precision=mixed_bfloat16", "train", "precision", "mixed_bfloat16"),
    ("data.tfds=wikipedia/20230601.en:train", "data", "tfds", "wikipedia/20230601.en:train"),
    ("masking.strategy=whole_word", "masking", "strategy", "whole_word"),
    ("data.corpus=a.txt,b/*.txt", "data", "corpus", ["a.txt", "b/*.txt"]),
    ("data.eval_corpus=", "data", "eval_corpus", []),
    ("data.packing=a=b", "data", "packing", "a=b"),  # only the first '=' splits
])
def test_apply_overrides_types(item, section, field, expected):
    exp = apply_overrides(Experiment(), [item])
    value = getattr(getattr(exp, section), field)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("item, section, field", [
    ("train.learning_rate=none", "train", "learning_rate"),
    ("tokenizer.vocab=None", "tokenizer", "vocab"),
    ("data.tfds=null", "data", "tfds"),
])
def test_apply_overrides_none(item, section, field):
    exp = Experiment()
    setattr(getattr(exp, section), field, "something")  # None must be accepted, not just kept
    apply_overrides(exp, [item])
    assert getattr(getattr(exp, section), field) is None


def test_apply_overrides_in_order_and_round_trip(tmp_path):
    exp = apply_overrides(Experiment(), ["train.steps=10", "train.steps=20",
                                         "encoder.num_layers=4", "data.corpus=x.txt"])
    assert exp.train.steps == 20 and exp.encoder.num_layers == 4
    exp.save(str(tmp_path / "config.json"))
    assert Experiment.load(str(tmp_path / "config.json")) == exp


@pytest.mark.parametrize("item, message", [
    ("model.num_layers=2", r"unknown section 'model'.*'encoder'"),
    ("train.batchsize=2", r"train has no field 'batchsize'.*'batch_size'"),
    ("train.batch_size=big", r"train.batch_size=big"),
    ("train.batch_size=None", r"train.batch_size=None"),
    ("train.jit_compile=maybe", r"expected a boolean"),
    ("train.learning_rate=fast", r"train.learning_rate=fast"),
    ("batch_size=2", r"section.field=value"),
    ("train.batch_size", r"section.field=value"),
])
def test_apply_overrides_errors(item, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(Experiment(), [item])


# ----------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------
def test_encoder_config_rejects_unknown_preset():
    with pytest.raises(ValueError, match=r"bert_huge.*bert_tiny.*bert_large"):
        presets.encoder_config("bert_huge", vocabulary_size=100)


def test_every_preset_resolves():
    for name in presets.PRESETS:
        config = presets.encoder_config(name, vocabulary_size=100)
        assert isinstance(config, EncoderConfig)
        assert config.hidden_dim % config.num_heads == 0


# ----------------------------------------------------------------------------------------------
# validate(): plain Python, the flag's name in the message
# ----------------------------------------------------------------------------------------------
def test_defaults_and_recipes_validate():
    """The defaults and every shipped recipe pass (paths aside: recipes name data that a
    clone may not have, so their paths are blanked)."""
    Experiment().validate()
    FinetuneExperiment().validate()
    pipelines = os.path.join(os.path.dirname(os.path.dirname(__file__)), "pipelines")
    recipes = [n for n in os.listdir(pipelines) if n.endswith(".py")
               and "def config()" in open(os.path.join(pipelines, n)).read()]
    assert len(recipes) >= 4
    for name in recipes:
        experiment = load_recipe(os.path.join(pipelines, name))
        if isinstance(experiment, Experiment):
            experiment.data.corpus = []
        else:
            experiment.train.init = None
        experiment.validate()


@pytest.mark.parametrize("change, message", [
    (lambda e: setattr(e.train, "batch_size", 0), "--batch-size must be >= 1, got 0"),
    (lambda e: setattr(e.train, "batch_size", "32"), "--batch-size must be int, got '32'"),
    (lambda e: setattr(e.train, "steps", 100.0), "--steps must be int, got 100.0"),
    (lambda e: setattr(e.train, "jit_compile", 1), "--jit-compile must be bool, got 1"),
    (lambda e: setattr(e.data, "corpus", "a.txt"), "--corpus must be list[str], got 'a.txt'"),
    (lambda e: setattr(e, "masking", {"strategy": "span"}),
     "masking must be a MaskingConfig, got {'strategy': 'span'}"),
    (lambda e: setattr(e.train, "learning_rate", -1.0), "--learning-rate must be > 0, got -1"),
    (lambda e: setattr(e.train, "steps_per_execution", 0),
     "train.steps_per_execution must be >= 1, got 0"),  # no flag: named as --set spells it
    (lambda e: setattr(e.train, "adam_epsilon", 0.0), "train.adam_epsilon must be > 0"),
    (lambda e: setattr(e.train, "strategy", "gpu"), "--strategy must be one of auto, default"),
    (lambda e: setattr(e.train, "precision", "fp16"),
     "--precision must be one of auto, float32, mixed_bfloat16, mixed_float16; got 'fp16'"),
    (lambda e: setattr(e.train, "preset", "bert_huge"), "--preset must be one of bert_tiny"),
    (lambda e: setattr(e.data, "packing", "tight"), "--packing must be one of full_sentences"),
    (lambda e: setattr(e.masking, "random_token_rate", -0.1),
     "--random-token-rate must be in [0, 1], got -0.1"),
    (lambda e: setattr(e.encoder, "dropout", 1.0), "encoder.dropout must be in [0, 1)"),
    (lambda e: (setattr(e.train, "steps", 30), setattr(e.train, "save_every", 7)),
     "--steps (30) must be a multiple of --save-every (7)"),
    (lambda e: setattr(e.train, "warmup_steps", 5000), "--warmup-steps (5000) must be <= --steps"),
])
def test_validate_pretraining(change, message):
    exp = Experiment()
    change(exp)
    with pytest.raises(ConfigError, match=re.escape(message)):
        exp.validate()


@pytest.mark.parametrize("change, message", [
    (lambda e: setattr(e, "task", "qa"),
     "task must be one of ner, sentiment, classify; got 'qa'"),
    (lambda e: setattr(e.train, "epochs", 0), "--epochs must be >= 1, got 0"),
    (lambda e: setattr(e.train, "mask_rate", 1.5), "--mask-rate must be in [0, 1], got 1.5"),
    (lambda e: setattr(e.train, "encoder_dropout", -0.1), "--encoder-dropout must be in [0, 1)"),
    (lambda e: setattr(e.train, "early_stopping_patience", -1), "--early-stopping must be >= 0"),
    (lambda e: setattr(e.data, "max_train_examples", -5), "--max-train-examples must be >= 0"),
    (lambda e: setattr(e.data, "length_buckets", [0, 32]), "data.length_buckets must hold"),
    (lambda e: setattr(e.data, "tag_column", "2"), "--tag-column must be int, got '2'"),
    (lambda e: setattr(e, "labels", [1, 2]), "labels must be list[str], got [1, 2]"),
])
def test_validate_finetuning(change, message):
    exp = FinetuneExperiment()
    change(exp)
    with pytest.raises(ConfigError, match=re.escape(message)):
        exp.validate()


def test_validate_checks_paths_after_values(tmp_path):
    """A value mistake is reported before a path one; --init before --train and --valid."""
    exp = FinetuneExperiment()
    exp.train.init = str(tmp_path / "no_run")
    exp.data.train = exp.data.valid = str(tmp_path / "no_file")
    exp.train.epochs = 0
    with pytest.raises(ConfigError, match="--epochs"):
        exp.validate()
    exp.train.epochs = 1
    with pytest.raises(ConfigError, match="--init .*no_run: no such run directory"):
        exp.validate()
    exp.train.init = None
    with pytest.raises(ConfigError, match="--train .*no_file: no such file"):
        exp.validate()

    pre = Experiment()
    pre.data.eval_corpus = [str(tmp_path / "*.txt")]
    with pytest.raises(ConfigError, match=r"--eval-corpus '.*\*\.txt' matches no file"):
        pre.validate()
    (tmp_path / "a.txt").write_text("text\n")
    pre.validate()


def test_validate_loads_no_tensorflow():
    """What the CLI runs before it answers: config and presets only, no TensorFlow."""
    import subprocess
    import sys

    script = ("import sys\nfrom tfmask.config import Experiment, FinetuneExperiment\n"
              "Experiment().validate(); FinetuneExperiment().validate()\n"
              "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_pretrain_and_finetune_validate_before_writing(tmp_path):
    """Python callers get the same checks as the CLI, before the run directory exists."""
    from tfmask.train.finetuning import finetune
    from tfmask.train.pretraining import pretrain

    exp = Experiment()
    exp.masking.mask_token_rate = 0.95
    with pytest.raises(ConfigError, match=r"--mask-token-rate \+ --random-token-rate"):
        pretrain(exp, str(tmp_path / "pre"))
    ft = FinetuneExperiment()
    ft.train.freeze_epochs = 5
    with pytest.raises(ConfigError, match=r"--freeze-epochs \(5\) must be less than"):
        finetune(ft, str(tmp_path / "ft"))
    assert not os.listdir(tmp_path)


def test_validation_names_are_the_ones_the_pipelines_use():
    """The names `validate()` accepts are those the TensorFlow code dispatches on."""
    from tfmask import config
    from tfmask.text import masking, packing

    assert config.TRUNCATIONS == packing.TRUNCATIONS
    assert set(config.MASKING_STRATEGIES) == set(masking.STRATEGIES)


# ----------------------------------------------------------------------------------------------
# --precision: the old field name still loads; what `auto` resolves to
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("old, new", [(None, "float32"), ("mixed_bfloat16", "mixed_bfloat16"),
                                      ("mixed_float16", "mixed_float16")])
def test_config_json_with_the_old_mixed_precision_field_loads(old, new):
    for kind in (Experiment, FinetuneExperiment):
        d = kind().to_dict()
        del d["train"]["precision"]
        d["train"]["mixed_precision"] = old  # a config.json written before the rename
        loaded = kind.from_dict(d)
        assert loaded.train.precision == new
        assert "mixed_precision" not in loaded.to_dict()["train"]


_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
_AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_fp16\n"
_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


@pytest.mark.parametrize("requested, device, cpuinfo, capability, expected", [
    ("auto", "tpu", "", None, "mixed_bfloat16"),
    ("auto", "gpu", "", (9, 0), "mixed_bfloat16"),  # H100
    ("auto", "gpu", "", (8, 0), "mixed_bfloat16"),  # A100
    ("auto", "gpu", "", (7, 5), "mixed_float16"),  # T4: no fast bfloat16
    ("auto", "gpu", "", (6, 0), "mixed_float16"),  # P100
    ("auto", "cpu", _AMX, None, "mixed_bfloat16"),
    ("auto", "cpu", _AVX512_BF16, None, "float32"),  # bf16 without AMX: slower here
    ("auto", "cpu", _AVX2, None, "float32"),
    ("auto", "cpu", "", None, "float32"),  # no /proc/cpuinfo (macOS)
    ("float32", "tpu", "", None, "float32"),  # an explicit choice stands
    ("mixed_bfloat16", "cpu", _AVX2, None, "mixed_bfloat16"),
    ("mixed_float16", "gpu", "", (9, 0), "mixed_float16"),
])
def test_auto_precision_resolves_by_device(requested, device, cpuinfo, capability, expected):
    from tfmask.train import precision

    policy, why = precision.resolve(requested, device, precision.cpu_flags(cpuinfo), capability)
    assert policy == expected
    assert why.startswith("auto: " if requested == "auto" else "as asked")


def test_cpu_flags_reads_the_first_processor_and_arm_features():
    from tfmask.train import precision

    assert precision.cpu_flags(_AMX + "processor\t: 1\nflags\t\t: fpu\n") == {
        "fpu", "sse2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}
    assert precision.cpu_flags("processor : 0\nFeatures : fp asimd bf16\n") == {
        "fp", "asimd", "bf16"}
    assert precision.cpu_flags("model name : x\n") == frozenset()
