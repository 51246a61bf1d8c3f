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
