"""Runs Hugging Face transformers on a folder `tfmask export-weights --format hf` wrote.

Run by a separate Python that has torch and transformers (and no TensorFlow): tests point
`TFMASK_HF_PYTHON` at it. It imports nothing from tfmask.

    python hf_oracle.py REQUEST.json OUT.npz

REQUEST.json:
    folder          the written folder
    class           "BertModel", "BertForMaskedLM", "BertForTokenClassification" or
                    "BertForSequenceClassification" (loaded with from_pretrained)
    token_ids, segment_ids, padding_mask   int [B, L]: tfmask's ids, fed as they are
    texts           (optional) strings tokenized by the folder's own tokenizer
                    (AutoTokenizer), with text_pairs (optional) as their second segments
    words           (optional) NER sentences (lists of words): tokenized with
                    is_split_into_words, each word tagged from its first piece

OUT.npz: `logits` (or `sequence_output`, `pooled_output` for BertModel) on the given ids;
`text_ids`, `text_segments` (HF's ids, -1 padded) and `text_logits` for `texts`;
`word_tags` (label ids of all words, flattened) and `word_counts` for `words`;
`id2label` (the config's, in id order).
"""

import json
import sys

import numpy as np
import torch
import transformers


def main(request_path: str, out_path: str) -> None:
    with open(request_path) as fh:
        request = json.load(fh)
    folder = request["folder"]
    model = getattr(transformers, request["class"]).from_pretrained(folder).eval()
    out = {}
    with torch.no_grad():
        if "token_ids" in request:
            result = model(input_ids=torch.tensor(request["token_ids"]),
                           token_type_ids=torch.tensor(request["segment_ids"]),
                           attention_mask=torch.tensor(request["padding_mask"]))
            if request["class"] == "BertModel":
                out["sequence_output"] = result.last_hidden_state.numpy()
                out["pooled_output"] = result.pooler_output.numpy()
            else:
                out["logits"] = result.logits.numpy()
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        if "texts" in request:
            pairs = request.get("text_pairs")
            encoded = tokenizer(request["texts"], pairs, padding=True, truncation=True,
                                return_tensors="pt")
            mask = encoded["attention_mask"]
            out["text_ids"] = torch.where(mask > 0, encoded["input_ids"], -1).numpy()
            out["text_segments"] = torch.where(mask > 0, encoded["token_type_ids"], -1).numpy()
            out["text_logits"] = model(**encoded).logits.numpy()
        if "words" in request:
            tags, counts = [], []
            for words in request["words"]:
                encoded = tokenizer(words, is_split_into_words=True, truncation=True,
                                    return_tensors="pt")
                predicted = model(**encoded).logits[0].argmax(-1).tolist()
                first = {}
                for position, word in enumerate(encoded.word_ids(0)):
                    if word is not None and word not in first:
                        first[word] = predicted[position]
                # A word with no piece (HF drops control characters) has no tag: -1.
                tags += [first.get(i, -1) for i in range(len(words))]
                counts.append(len(words))
            out["word_tags"] = np.array(tags, np.int64)
            out["word_counts"] = np.array(counts, np.int64)
    labels = model.config.id2label
    out["id2label"] = np.array([labels[i] for i in sorted(labels)])
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:])
