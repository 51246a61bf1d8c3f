"""tfmask: BERT-style masked-language-model pretraining and fine-tuning, the TensorFlow way.

Public API (import the modules you need; importing `tfmask` itself loads no TensorFlow):

    tfmask.tokenization   WordPiece vocabularies, `WordPieceTokenizer` (in-graph)
    tfmask.packing        packing lines into BERT sequences
    tfmask.masking        MLM masking strategies (pure, seeded tensor functions)
    tfmask.data           tf.data pipelines yielding (x, y, sample_weight)
    tfmask.encoder        `BertEncoder`, a Keras functional BERT
    tfmask.heads          `MaskedLM`
    tfmask.training       strategy, optimizer, callbacks
    tfmask.pretraining    `pretrain(experiment, run_dir)`
    tfmask.checkpoints    import Hugging Face / google-research/bert / keras-hub checkpoints
    tfmask.runs           load a run directory's encoder, tokenizer and config
    tfmask.config         dataclass configs; tfmask.presets: encoder sizes
"""

__version__ = "0.1.0"
