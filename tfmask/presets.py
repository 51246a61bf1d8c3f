"""Encoder presets: the BERT sizes of Turc et al. (2019) and Devlin et al. (2019).

Names say what a preset is, not its shape. `intermediate_dim` is 4 x `hidden_dim` and the
head size is 64 throughout, as in the released BERT checkpoints, so a checkpoint of the same
size maps onto the preset weight for weight.
"""

from __future__ import annotations

from tfmask.config import EncoderConfig

#: name -> (num_layers, hidden_dim, num_heads)
_SHAPES = {
    "bert_tiny": (2, 128, 2),
    "bert_mini": (4, 256, 4),
    "bert_small": (4, 512, 8),
    "bert_medium": (8, 512, 8),
    "bert_base": (12, 768, 12),
    "bert_large": (24, 1024, 16),
}

PRESETS = tuple(_SHAPES)

#: Peak AdamW learning rate when none is given: small models need (and tolerate) higher
#: rates. bert_tiny: held-out masked accuracy after 1,500 steps (batch 32, seq 128) on the
#: WikiText+AG News corpus was 0.108 at 1e-3, 0.126 at 2e-3, 0.123 at 3e-3; 6e-3 diverged.
#: bert_base / bert_large: 1e-4, as in the BERT paper.
_LEARNING_RATES = {
    "bert_tiny": 2e-3,
    "bert_mini": 1e-3,
    "bert_small": 5e-4,
    "bert_medium": 3e-4,
    "bert_base": 1e-4,
    "bert_large": 1e-4,
}


def default_learning_rate(preset: str) -> float:
    """The peak learning rate used for `preset` when none is configured."""
    if preset not in _LEARNING_RATES:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return _LEARNING_RATES[preset]


def encoder_config(preset: str, vocabulary_size: int, max_sequence_length: int = 512,
                   dropout: float = 0.1) -> EncoderConfig:
    """Returns the `EncoderConfig` of a preset for a given vocabulary.

    Raises:
      ValueError: if `preset` is not one of `PRESETS`.
    """
    if preset not in _SHAPES:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    num_layers, hidden_dim, num_heads = _SHAPES[preset]
    return EncoderConfig(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=4 * hidden_dim,
        dropout=dropout,
        max_sequence_length=max_sequence_length,
        num_segments=2,
    )
