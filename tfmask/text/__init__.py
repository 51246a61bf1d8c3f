"""Text to tensors, inside the TensorFlow graph: tokenization, sequences, masking, labels.

    tokenization       WordPiece vocabularies and the in-graph `WordPieceTokenizer`
    packing            lines -> packed pieces; `build_sequences`: [CLS] A [SEP] (B [SEP])
    masking            every MLM masking strategy and fine-tuning's masking augmentation,
                       pure functions of tensors and a seed
    labels             tag schemes, entity spans, label lists (plain Python)
    readers            CoNLL, TSV/CSV and TFDS sources, with `file:line` errors (plain Python)
    examples           one fine-tuning split as words / texts and label ids
    ngrams             word n-gram keys on packed batches; lists matched as masking units
    corpus_statistics  first passes for entity / keyword / PMI masking, and their tables
    corpus_formats     CoNLL NER files read as pretraining text (sentences as lines)
    pretraining_data   the MLM tf.data pipeline: `(x, y = mask_ids, sample_weight)`
    finetuning_data    token and sequence classification pipelines, NER windows

Nothing here imports the model, training or serving code.
"""
