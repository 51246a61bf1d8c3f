"""Training with `model.fit`: strategy, optimizer, callbacks, pretraining, fine-tuning.

    distribute     which `tf.distribute` strategy a run uses; runs across workers (the chief
                   prepares and writes, the others follow), Keras `fit` across workers
    optimizer      AdamW as BERT trains it, its schedule, and the one compile helper
    callbacks      history record, validation with best-epoch keeping, dropout reseeding
    pretraining    `pretrain(experiment, run_dir)`
    finetuning     `finetune(experiment, run_dir)`
    evaluation     `Evaluator` and `evaluate(run_dir, ...)` (`tfmask evaluate`)
    metrics        entity F1 (seqeval's default mode), accuracy, macro-F1 (plain Python)
    plots          history, per-type F1 and confusion-matrix figures
"""
