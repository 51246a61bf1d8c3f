"""The pretraining tf.data pipeline, end to end on a small corpus written to tmp_path.

Every line of the corpus starts with a unique marker word (`m0`, `m1`, ...), so a packed
sequence can be decoded back into the lines it holds: that checks hold-out splits, document
boundaries and that no text is lost, without trusting the pipeline's own bookkeeping.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfmask.config import DataConfig, MaskingConfig
from tfmask.text import pretraining_data
from tfmask.text.tokenization import SPECIAL_TOKENS, WordPieceTokenizer

NUM_MARKERS = 2000
FILLERS = [f"w{i}" for i in range(40)] + ["un", "##able", "."]
VOCAB = list(SPECIAL_TOKENS) + FILLERS + [f"m{i}" for i in range(NUM_MARKERS)]
L, P, B = 32, 6, 4  # max_sequence_length, max_predictions, batch_size


def make_documents(seed, num_docs, first_marker=0):
    """Documents as lists of lines; each line = marker word + 2-19 filler words
    (at most 30 pieces, so no line is ever cut at L = 32)."""
    rng = np.random.default_rng(seed)
    plain = [w for w in FILLERS if w.startswith("w") or w == "."]
    docs, marker = [], first_marker
    for _ in range(num_docs):
        doc = []
        for _ in range(int(rng.integers(1, 6))):
            words = [f"m{marker}"] + list(rng.choice(plain, int(rng.integers(2, 20))))
            # "unable" is two pieces: "un ##able".
            doc.append(" ".join(words).replace("w39", "unable"))
            marker += 1
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three files of documents separated by blank lines. Returns (files, documents)."""
    root = tmp_path_factory.mktemp("corpus")
    files, all_docs, marker = [], [], 0
    for i, num_docs in enumerate([8, 12, 6]):
        docs = make_documents(i, num_docs, marker)
        marker += sum(len(d) for d in docs)
        path = root / f"part_{i}.txt"
        path.write_text("\n\n".join("\n".join(doc) for doc in docs) + "\n", encoding="utf-8")
        files.append(str(path))
        all_docs += docs
    assert marker < NUM_MARKERS
    return files, all_docs


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(VOCAB)


DATA_FIELDS = {f.name for f in dataclasses.fields(DataConfig)}


def build(tokenizer, files, *, batch_size=B, seed=0, training=True, start_step=0,
          eval_split=False, **fields):
    """The pipeline over `files`; `fields` are `DataConfig` or `MaskingConfig` fields
    (defaults: L, P, a 100-sequence shuffle buffer, nothing held out)."""
    data = {"max_sequence_length": L, "shuffle_buffer": 100, "eval_holdout": 0.0}
    masking = {"max_predictions": P}
    for name, value in fields.items():
        (data if name in DATA_FIELDS else masking)[name] = value
    return pretraining_data.pretraining_dataset(
        tokenizer, DataConfig(corpus=list(files), **data), MaskingConfig(**masking),
        batch_size=batch_size, seed=seed, training=training, start_step=start_step,
        eval_split=eval_split)


def take(ds, n):
    return [tf.nest.map_structure(lambda t: t.numpy(), batch) for batch in ds.take(n)]


def unmasked(batch):
    """The sequence before masking: put the original ids (y) back at the masked positions."""
    x, y, w = batch
    ids = x["token_ids"].copy()
    rows, slots = np.nonzero(w)
    ids[rows, x["mask_positions"][rows, slots]] = y[rows, slots]
    return ids


def decode_lines(tokenizer, ids_row):
    """One unmasked [L] row -> list of (marker, text) lines it contains."""
    tokens = [tokenizer.vocab[i] for i in ids_row if i not in tokenizer.special_ids]
    lines = []
    for token in tokens:
        if token.startswith("m") and token[1:].isdigit():
            lines.append([int(token[1:]), token])
        else:
            lines[-1][1] += (token[2:] if token.startswith("##") else " " + token)
    return [tuple(line) for line in lines]


def line_table(docs):
    """marker -> (document index, line text)."""
    table = {}
    for d, doc in enumerate(docs):
        for line in doc:
            table[int(line.split()[0][1:])] = (d, line)
    return table


def real(batch):
    """`batch` without the rows an evaluation pass fills its last batch up with (copies of
    its first sequence that weigh 0; the test corpora's lines are unique, real rows never
    repeat)."""
    x, _, w = batch
    n = len(w)
    while n > 1 and np.array_equal(x["token_ids"][n - 1], x["token_ids"][0]) and \
            not w[n - 1].any():
        n -= 1
    return tf.nest.map_structure(lambda t: t[:n], batch)


def rows(tokenizer, batches):
    """Every unmasked sequence of `batches`, decoded: a list of [(marker, text), ...]."""
    return [decode_lines(tokenizer, row) for batch in batches for row in unmasked(real(batch))]


def all_lines(tokenizer, batches):
    return [line for row in rows(tokenizer, batches) for line in row]


@pytest.fixture(scope="module")
def train(tokenizer, corpus):
    """The training stream (seed 7) and its first 60 batches, shared: building a pipeline
    traces its functions, which costs about a second."""
    ds = build(tokenizer, corpus[0], seed=7)
    return ds, take(ds, 60)


@pytest.fixture(scope="module")
def eval_batches(tokenizer, corpus):
    """One deterministic evaluation pass (the last batch may be smaller)."""
    return take(build(tokenizer, corpus[0], training=False), -1)


def test_element_spec(train):
    x_spec, y_spec, w_spec = train[0].element_spec
    assert set(x_spec) == {"token_ids", "segment_ids", "padding_mask", "mask_positions"}
    for key in ("token_ids", "segment_ids", "padding_mask"):
        assert x_spec[key].shape.as_list() == [B, L]
    assert x_spec["mask_positions"].shape.as_list() == [B, P]
    assert y_spec.shape.as_list() == w_spec.shape.as_list() == [B, P]
    assert x_spec["token_ids"].dtype == tf.int32 and x_spec["segment_ids"].dtype == tf.int32
    # int32 (1 = real token) like the encoder input: bool batches cannot be split across
    # replicas.
    assert x_spec["padding_mask"].dtype == tf.int32
    assert x_spec["mask_positions"].dtype == tf.int32
    assert y_spec.dtype == tf.int32 and w_spec.dtype == tf.float32


def test_batches_and_mask_weights(tokenizer, train):
    for x, y, w in train[1]:
        assert set(np.unique(x["padding_mask"])) <= {0, 1}
        ids, padding = x["token_ids"], x["padding_mask"].astype(bool)
        assert np.all(ids[:, 0] == tokenizer.cls_token_id)
        lengths = padding.sum(axis=1)
        assert np.all(ids[np.arange(B), lengths - 1] == tokenizer.sep_token_id)
        assert np.all(ids[~padding] == tokenizer.pad_token_id)
        assert not x["segment_ids"].any()
        # Unused slots: position 0, id 0, weight exactly 0; used slots weigh 1 (the loss,
        # `WeightedMeanCrossEntropy`, takes the mean over the global batch's used slots).
        used = w > 0
        assert used.any()
        assert not x["mask_positions"][~used].any() and not y[~used].any()
        assert np.all(w[used] == 1.0)
        # Masked positions are real content, never [CLS], [SEP] or padding.
        pos = x["mask_positions"][used]
        rows = np.nonzero(used)[0]
        assert np.all(pos >= 1) and np.all(pos < lengths[rows] - 1)
        assert not np.isin(y[used], tokenizer.special_ids).any()


def test_masks_change_between_passes(train):
    # Several epochs of the repeated training stream: the same sequence comes back with a
    # different mask (the mask seed derives from the step, not from the example).
    seen = {}
    for batch in train[1]:
        for row, masked in zip(unmasked(batch), batch[0]["token_ids"]):
            seen.setdefault(row.tobytes(), []).append(masked.tobytes())
    repeated = [v for v in seen.values() if len(v) > 1]
    assert len(repeated) > 20
    differ = sum(len(set(v)) > 1 for v in repeated)
    assert differ / len(repeated) > 0.9


def test_mask_seed_changes_every_step(tokenizer, tmp_path):
    # Identical sequences in every batch: only the (seed, step) mask seed can tell two
    # batches apart, so a seed that ignored the step would repeat the same mask forever.
    line = "m0 " + " ".join(f"w{i}" for i in range(25))
    path = tmp_path / "same.txt"
    path.write_text("\n\n".join([line] * 12) + "\n", encoding="utf-8")
    batches = take(build(tokenizer, [str(path)], packing="one_line"), 6)
    originals = {unmasked(batch).tobytes() for batch in batches}
    assert len(originals) == 1
    masks = [batch[0]["mask_positions"].tobytes() for batch in batches]
    assert len(set(masks)) == len(masks)
    # Rows of one batch get different masks too.
    assert len({row.tobytes() for row in batches[0][0]["mask_positions"]}) > 1


def test_same_seed_same_batches_other_seed_other_batches(tokenizer, corpus, train):
    a = train[1][:8]
    b = take(build(tokenizer, corpus[0], seed=7), 8)
    c = take(build(tokenizer, corpus[0], seed=8), 8)
    for batch_a, batch_b in zip(a, b):
        tf.nest.map_structure(np.testing.assert_array_equal, batch_a, batch_b)
    assert any(not np.array_equal(ba[0]["token_ids"], bc[0]["token_ids"])
               for ba, bc in zip(a, c))


@pytest.mark.parametrize("start_step", [3, 25])
def test_resume_yields_the_uninterrupted_batches(tokenizer, corpus, train, eval_batches,
                                                 start_step):
    full = train[1]
    resumed = take(build(tokenizer, corpus[0], seed=7, start_step=start_step), 4)
    if start_step == 25:
        # Past the first epoch: the reshuffled second epoch and its masks are reproduced too.
        assert start_step > len(eval_batches)
    for expected, got in zip(full[start_step:start_step + 4], resumed, strict=True):
        tf.nest.map_structure(np.testing.assert_array_equal, expected, got)


def test_evaluation_pass_is_complete_and_deterministic(tokenizer, corpus, eval_batches):
    files, docs = corpus
    table = line_table(docs)
    first = eval_batches
    # A second pass over a second pipeline: identical sequences and masks.
    second = take(build(tokenizer, files, training=False), -1)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    # The last, smaller batch is kept (an evaluation pass drops nothing), filled up to B rows
    # with copies of its first sequence that weigh 0 (one shape, equal shares per replica).
    assert all(len(batch[1]) == B for batch in first)
    sizes = [len(real(batch)[1]) for batch in first]
    assert all(size == B for size in sizes[:-1]) and 0 < sizes[-1] < B
    x, _, w = first[-1]
    assert not w[sizes[-1]:].any()
    assert (x["token_ids"][sizes[-1]:] == x["token_ids"][0]).all()
    lines = all_lines(tokenizer, first)
    # Every line exactly once, its text intact.
    assert sorted(m for m, _ in lines) == sorted(table)
    for marker, text in lines:
        assert text == table[marker][1]
    # No sequence holds lines of two documents.
    for row in rows(tokenizer, first):
        assert len({table[m][0] for m, _ in row}) == 1
    # Mask weights as they are: 1 on a used slot, 0 elsewhere.
    for _, _, w in first:
        assert set(np.unique(w)) <= {0.0, 1.0}


def test_one_line_packing(tokenizer, corpus):
    files, docs = corpus
    ds = build(tokenizer, files[:1], training=False, packing="one_line")
    sequences = rows(tokenizer, take(ds, -1))
    first_file = line_table(docs[:8])
    # Every line fits in L - 2 = 30 pieces, so one sequence per line.
    assert all(len(row) == 1 for row in sequences)
    assert sorted(row[0][0] for row in sequences) == sorted(first_file)


def test_holdout_split_shares_no_line(tokenizer, corpus):
    files, docs = corpus
    table = line_table(docs)
    kwargs = {"training": False, "eval_holdout": 0.3}
    held = {m for m, _ in all_lines(tokenizer, take(
        build(tokenizer, files, eval_split=True, **kwargs), -1))}
    train = {m for m, _ in all_lines(tokenizer, take(
        build(tokenizer, files, eval_split=False, **kwargs), -1))}
    assert not held & train
    assert held | train == set(table)
    assert 0.15 < len(held) / len(table) < 0.45
    # The repeated, shuffled training stream never shows a held-out line either.
    seen = {m for m, _ in all_lines(tokenizer, take(
        build(tokenizer, files, eval_holdout=0.3), 30))}
    assert seen <= train and len(seen) > 0.9 * len(train)


def test_whole_word_masking_in_pipeline(tokenizer, corpus):
    un, able = tokenizer.vocab.index("un"), tokenizer.vocab.index("##able")
    pairs = 0
    for batch in take(build(tokenizer, corpus[0][1:2], strategy="whole_word",
                            max_predictions=10, selection_rate=0.3), 20):
        x, y, w = batch
        original = unmasked(batch)
        for b in range(B):
            chosen = set(x["mask_positions"][b][w[b] > 0].tolist())
            for i in np.nonzero(original[b] == un)[0]:
                assert original[b][i + 1] == able
                assert (i in chosen) == (i + 1 in chosen)
                pairs += i in chosen
    assert pairs > 0


def test_expand_globs(tmp_path):
    for name in ("b.txt", "a.txt", "c.md"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "sub").mkdir()
    pattern = str(tmp_path / "*.txt")
    assert pretraining_data.expand_globs([pattern, str(tmp_path / "a.txt")]) == [
        str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    missing = str(tmp_path / "nothing_*.txt")
    with pytest.raises(FileNotFoundError, match="nothing_"):
        pretraining_data.expand_globs([pattern, missing])
    with pytest.raises(FileNotFoundError, match="sub"):  # a directory is not a file
        pretraining_data.expand_globs([str(tmp_path / "sub")])


def test_argument_errors(tokenizer, corpus):
    def dataset(**data):
        return pretraining_data.pretraining_dataset(tokenizer, DataConfig(**data),
                                                    MaskingConfig(), batch_size=B)

    with pytest.raises(ValueError, match="exactly one"):
        dataset()
    with pytest.raises(ValueError, match="exactly one"):
        dataset(corpus=corpus[0], tfds="x:train")
    with pytest.raises(ValueError, match="max_predictions"):
        build(tokenizer, corpus[0], max_predictions=L + 1)
    with pytest.raises(ValueError, match="NAME:SPLIT"):
        dataset(tfds="no_split_given")


# --- TFDS: a real dataset prepared in a temporary data_dir -----------------------------------

TFDS_DOCS = make_documents(seed=5, num_docs=10, first_marker=1500)


class TfmaskTinyText(tfds.core.GeneratorBasedBuilder):
    """A local TFDS text dataset: one example per document, lines joined by newlines."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        # `DatasetInfo` directly: `dataset_info_from_configs` looks for metadata files
        # beside the builder's code.
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, doc in enumerate(TFDS_DOCS):
            yield i, {"text": "\n".join(doc)}


def test_tfds_source(tokenizer, tmp_path):
    data_dir = str(tmp_path / "tfds")
    TfmaskTinyText(data_dir=data_dir).download_and_prepare()
    data = DataConfig(tfds="tfmask_tiny_text:train", tfds_data_dir=data_dir, eval_holdout=0.0,
                      max_sequence_length=L)
    masking = MaskingConfig(max_predictions=P)
    ds = pretraining_data.pretraining_dataset(tokenizer, data, masking, training=False,
                                              batch_size=B)
    sequences = rows(tokenizer, take(ds, -1))
    table = line_table(TFDS_DOCS)
    lines = [line for row in sequences for line in row]
    assert sorted(m for m, _ in lines) == sorted(table)
    for marker, text in lines:
        assert text == table[marker][1]
    for row in sequences:  # each TFDS example is a document: packing never crosses two
        assert len({table[m][0] for m, _ in row}) == 1
    # The training stream reads it too, with the same batch layout.
    x, y, w = take(pretraining_data.pretraining_dataset(
        tokenizer, dataclasses.replace(data, shuffle_buffer=50), masking, batch_size=B), 1)[0]
    assert x["token_ids"].shape == (B, L) and y.shape == w.shape == (B, P)


# --- the shared dataset checks (tests/helpers.py) ---------------------------------------------

def test_pretraining_batches_feed_the_masked_lm(tokenizer, train):
    """`x` of the pipeline is exactly the MaskedLM's inputs, and the model takes a batch."""
    from helpers import assert_dataset_feeds_model
    from tfmask.model import BertEncoder, MaskedLM

    encoder = BertEncoder(vocabulary_size=tokenizer.vocabulary_size, num_layers=1, num_heads=2,
                          hidden_dim=8, intermediate_dim=16, max_sequence_length=L)
    logits = assert_dataset_feeds_model(train[0], MaskedLM(encoder))
    assert tuple(logits.shape) == (B, P, tokenizer.vocabulary_size)


def test_pipeline_steps_agree_eagerly_and_in_tf_data(tokenizer):
    """Tokenize -> [CLS]/[SEP]/pad -> mask, the steps the pipeline maps over batches, give the
    same tensors eagerly, traced in `map`, and (where rows are independent) row by row."""
    from helpers import run_dataset_test
    from tfmask.config import MaskingConfig
    from tfmask.text import masking, packing

    lines = tf.constant(["m1 w1 w2 unable .", "m2 w3", "", "m3 unable unable w4 w5 w6"])
    ids, starts = run_dataset_test(tokenizer.pieces_and_word_starts, lines, unbatched="row")
    features = run_dataset_test(
        lambda i, s: packing.finalize(i, s, L, tokenizer.cls_token_id, tokenizer.sep_token_id,
                                      tokenizer.pad_token_id), (ids, starts), unbatched="row")
    assert features["token_ids"].shape == (4, L)
    # One seed per batch: a row's mask depends on its batch, so rows are not checked alone.
    masked = run_dataset_test(
        lambda f: masking.apply_masking(
            f, tf.constant([7, 3]), MaskingConfig(strategy="whole_word", selection_rate=0.5,
                                                  max_predictions=P),
            vocabulary_size=tokenizer.vocabulary_size, mask_token_id=tokenizer.mask_token_id,
            special_ids=tokenizer.special_ids),
        features, unbatched=None)
    assert np.asarray(masked["mask_weights"]).sum() > 0


def test_selection_rate_schedule_follows_the_step(tokenizer, corpus):
    """`final_selection_rate`: the pipeline masks step S at the rate of progress S / total,
    and a resumed run (start_step) at the rate of its own steps."""
    def rate(start_step):
        ds = pretraining_data.pretraining_dataset(
            tokenizer, DataConfig(corpus=list(corpus[0]), max_sequence_length=L,
                                  shuffle_buffer=100, eval_holdout=0.0),
            MaskingConfig(selection_rate=0.5, final_selection_rate=0.1, max_predictions=L),
            batch_size=B, seed=0, training=True, start_step=start_step, total_steps=100)
        selected = real_pieces = 0
        for x, _, w in take(ds, 10):
            selected += w.sum()
            real_pieces += (x["padding_mask"].sum(axis=1) - 2).sum()
        return selected / real_pieces

    early, late = rate(0), rate(90)
    assert 0.4 < early < 0.55 and 0.08 < late < 0.16, (early, late)
