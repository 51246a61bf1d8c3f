"""Dropout as BERT applies it, observed inside `model.fit`: every site on in training and off
in inference, the rate and the 1/(1-rate) scale, and no two masks alike across sites, steps
and epochs (after `ReseedDropout`). `benchmarks/dropout_audit.py` compares the same sites
with Hugging Face's; test_reliability checks that a resumed run repeats an uninterrupted one
with dropout on."""

import keras
import numpy as np
import tensorflow as tf

from helpers import random_inputs
from tfmask.model.encoder import BertEncoder
from tfmask.model.heads import TokenClassifier
from tfmask.model.layers import ReplicaDropout, TransformerBlock
from tfmask.train.callbacks import ReseedDropout

RATE, LAYERS, BATCHES = 0.2, 2, 3


def _sites(model) -> dict:
    """{name: Dropout layer}: the embeddings, per block the attention probabilities and both
    residual branches, the classifier input."""
    encoder = model.encoder
    sites = {"embeddings": encoder.embeddings_dropout, "classifier": model.output_dropout}
    for i, block in enumerate(encoder.transformer_layers):
        sites[f"{i}.probs"] = block.self_attention._dropout_layer
        sites[f"{i}.attention"] = block.self_attention_dropout
        sites[f"{i}.ffn"] = block.output_dropout
    return sites


def _observed_model(seed: int):
    """A tiny TokenClassifier whose dropout layers write their last input and output to
    variables (read after each step), and the per-(epoch, step, site) record."""
    keras.utils.set_random_seed(seed)
    encoder = BertEncoder(vocabulary_size=30, num_layers=LAYERS, num_heads=2, hidden_dim=16,
                          intermediate_dim=32, dropout=RATE, max_sequence_length=16)
    model = TokenClassifier(encoder, 3, dropout=RATE)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    seen = {}
    for name, layer in _sites(model).items():
        pair = [tf.Variable(tf.zeros([0]), shape=tf.TensorShape(None)) for _ in range(2)]
        seen[name] = pair

        def observed(inputs, training=False, call=layer.call, pair=pair):
            outputs = call(inputs, training=training)
            pair[0].assign(inputs)
            pair[1].assign(outputs)
            return outputs
        layer.call = observed
    record = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            for name, (x, out) in seen.items():
                record[(self.epoch, batch, name)] = (x.numpy(), out.numpy())

    return model, seen, record, Record()


def _data():
    batches = []
    for i in range(BATCHES):
        x = random_inputs(batch=4, length=12, seed=i)
        x.pop("mask_positions")
        x["padding_mask"] = x["padding_mask"].astype("int32")
        batches.append((x, np.zeros((4, 12), "int32")))
    return tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=(
        {k: tf.TensorSpec([4, 12], tf.int32) for k in batches[0][0]},
        tf.TensorSpec([4, 12], tf.int32)))


def _valid(x):
    """Units whose input is a normal float: padded keys' probabilities are 0, and TensorFlow
    flushes a subnormal input to 0 whether dropped or not."""
    return np.abs(x) >= np.finfo(np.float32).tiny


def _dropped(x, out):
    return (out == 0)[_valid(x)]


def test_every_site_drops_at_the_rate_and_scales_the_rest_in_fit_only():
    model, seen, record, recorder = _observed_model(seed=0)
    # one dropout layer per site, none elsewhere (a new site would go unaudited)
    generators = [layer for layer in model._flatten_layers() if layer._seed_generators]
    assert len(generators) == len(seen) == 2 + 3 * LAYERS
    assert all(isinstance(layer, ReplicaDropout) for layer in _sites(model).values())
    model.fit(_data(), epochs=2, verbose=0, callbacks=[ReseedDropout(), recorder])
    assert len(record) == 2 * BATCHES * len(seen)
    for name in seen:
        calls = [v for k, v in record.items() if k[2] == name]
        dropped = np.concatenate([_dropped(x, out) for x, out in calls])
        # >= 4,600 units a site: 5 standard deviations of a binomial at 0.2 is < 0.03
        assert abs(dropped.mean() - RATE) < 0.03, name
        kept = np.concatenate([out[_valid(x) & (out != 0)] / x[_valid(x) & (out != 0)]
                               for x, out in calls])
        np.testing.assert_allclose(kept, 1 / (1 - RATE), rtol=1e-5, err_msg=name)
    # masks: no two calls alike, across sites, steps and epochs (a shared seed, or an epoch
    # reseeding that repeats the previous epoch's states, would repeat masks)
    masks = [_dropped(x, out) for x, out in record.values()]
    by_size = {}
    for mask in masks:
        by_size.setdefault(mask.size, []).append(mask)
    for group in by_size.values():
        assert len({m.tobytes() for m in group}) == len(group)
    # inference: every site hands its input on unchanged
    for infer in (lambda: model.predict(_data(), verbose=0),
                  lambda: model(next(iter(_data()))[0])):
        infer()
        for name, (x, out) in seen.items():
            np.testing.assert_array_equal(x.numpy(), out.numpy(), err_msg=name)



def test_replicas_draw_masks_of_their_own_and_one_device_is_keras_dropout():
    """Keras's `Dropout` gives every replica of a `MirroredStrategy` the same mask (one
    mirrored seed state); `ReplicaDropout`, at every site of the model, folds the replica id
    into the seed. On one device it is Keras's layer exactly."""
    x = tf.ones([16, 64])
    ours, theirs = ReplicaDropout(0.3, seed=7), keras.layers.Dropout(0.3, seed=7)
    for _ in range(2):
        np.testing.assert_array_equal(ours(x, training=True), theirs(x, training=True))
    assert ReplicaDropout.from_config(ours.get_config()).get_config() == ours.get_config()
    # dropout 0 (Keras makes no seed generator then): blocks still build and pass inputs on
    block = TransformerBlock(num_heads=2, intermediate_dim=8, dropout=0.0)
    h = tf.random.normal([2, 5, 4])
    np.testing.assert_array_equal(block(h, training=True), block(h, training=False))

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layers = {"keras": keras.layers.Dropout(0.3, seed=7), "tfmask": ReplicaDropout(0.3, seed=7)}
    masks = {}
    for name, layer in layers.items():
        step = tf.function(lambda layer=layer: strategy.run(lambda: layer(x, training=True)))
        outputs = [r.numpy() for r in strategy.experimental_local_results(step())]
        masks[name] = [out == 0 for out in outputs]
        for out in outputs:  # 1,024 units a replica: 0.3 +- 5 sd is 0.3 +- 0.072
            assert abs((out == 0).mean() - 0.3) < 0.072, name
            np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(*masks["keras"])  # why the layer exists
    assert (masks["tfmask"][0] != masks["tfmask"][1]).mean() > 0.2  # independent: ~0.42
