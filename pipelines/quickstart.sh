#!/usr/bin/env bash
# The README's main job, end to end on data the project writes itself, on CPU (~5 minutes):
# raw text -> pretrained bert_tiny encoder -> NER and sentiment heads fine-tuned from it ->
# TF Serving exports -> predictions from the exported graphs. Re-running resumes (finished
# steps are skipped) and writes new export versions.
#
#   pipelines/quickstart.sh                  (TFMASK=path/to/tfmask OUT=runs/x to change)
set -euo pipefail
TFMASK=${TFMASK:-.venv/bin/tfmask}
OUT=${OUT:-runs/quickstart}

# 1. Pretrain (MLM, dynamic masking in the tf.data graph) on the embedded corpus. Its lines
#    are short sentences and so are the fine-tuning sets': 64-piece sequences (2-3 sentences
#    each) train in half the time of 128 and fine-tune better here (NER F1 0.85 vs 0.80).
$TFMASK pretrain --seq-len 64 --out "$OUT/pretrain"
# 2. Fine-tune both heads from that encoder on the embedded NER and sentiment sets. bert_tiny
#    wants a far higher rate than BERT-base's 5e-5 default.
$TFMASK finetune ner --init "$OUT/pretrain" --learning-rate 1e-3 --epochs 3 --out "$OUT/ner"
$TFMASK finetune sentiment --init "$OUT/pretrain" --learning-rate 1e-3 --epochs 5 \
    --out "$OUT/sentiment"
# 3. Export for TF Serving (saved_models/NAME/N and saved_models/NAME-ids/N).
$TFMASK export "$OUT/ner" --name quickstart-ner
$TFMASK export "$OUT/sentiment" --name quickstart-sentiment
# 4. Call the exported serve_text signatures, as a server would.
$TFMASK predict saved_models/quickstart-ner \
    "Vim Sokirani is a professor of medicine at the University of Vaefinenza ."
$TFMASK predict saved_models/quickstart-sentiment \
    "I really adored the service ." "I really hated the atmosphere ."
