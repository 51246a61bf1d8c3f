"""Recipe: the README's main job, bert_tiny on the embedded corpus, a few minutes on 2 CPU cores.

    tfmask pretrain --recipe pipelines/pretrain_quickstart.py --out runs/quickstart

(`tfmask pretrain --out runs/quickstart` with no recipe uses the same values: they are the
library defaults.) Flags given on the command line override the values below.
"""

from tfmask.config import Experiment


def config() -> Experiment:
    exp = Experiment()
    exp.data.corpus = []  # [] = the embedded corpus, written into the run directory
    exp.data.max_sequence_length = 128
    exp.tokenizer.vocabulary_size = 8000  # an upper bound: the small corpus yields ~2.5k
    exp.train.preset = "bert_tiny"  # 2 layers x 128: trains at ~5 steps/s on 2 cores
    exp.train.batch_size = 32
    exp.train.steps = 1000  # loss is still falling at 1000; enough to show the curve
    exp.train.learning_rate = 2e-3  # small models tolerate (and need) a high peak rate
    return exp
