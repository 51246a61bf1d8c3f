"""The Hugging Face side of dropout_audit.py, and the NumPy statistics both sides share.

Run as a script (in a virtualenv with torch and transformers; it imports no TensorFlow):

--mode sites: `BertForTokenClassification` (eager attention) at --dropout, two training steps
  on the audit batches with every call of `torch.nn.functional.dropout` observed (HF's
  `nn.Dropout` modules and its attention-probability dropout both go through it), then one
  forward in eval mode; writes each call's site statistics and the masks' independence.
--mode replay: the batches with the dropout masks tfmask drew (`masks.npz`, one per site and
  step, in call order) instead of torch's own; starts from tfmask's classifier; writes the
  per-step losses and the trained model (`save_pretrained`). With `--own-masks`, the same
  steps with torch's own masks (the control: how far apart independent masks put the runs).
--mode train: one epoch on the batches at --dropout with torch's masks (seed --seed), the
  fine-tuning schedule (10% warm-up, linear decay); writes the classifier it started from
  (tfmask copies it), the per-step losses and the trained model.

Everywhere: torch AdamW (weight decay 0.01, none on LayerNorm/bias, eps 1e-6), global-norm
clip 1.0, fp32, 2 threads. The module-level functions use NumPy only: dropout_audit.py imports
them to compute the same statistics on tfmask's masks.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os

import numpy as np

from _hf_common import adamw, apply_gradients, load_batches, save_classifier

KINDS = ("attention_probs", "attention_output", "ffn_output")


def site_names(num_layers: int) -> list[str]:
    """The dropout sites of a BERT token classifier in the order a forward pass meets them."""
    return (["embeddings"] + [f"layer{i}.{k}" for i in range(num_layers) for k in KINDS]
            + ["classifier_input"])


def observe(inputs: np.ndarray, outputs: np.ndarray) -> dict:
    """What one dropout call did: which units it zeroed and how it scaled the others.

    Only units whose input is a normal float count (`valid`): an input of exactly 0 (the
    attention probabilities of padded keys) says nothing about the mask, and a subnormal one
    (a softmax tail below 1.2e-38) comes out as 0 from TensorFlow's CPU kernels, which flush
    subnormals to zero, and imprecisely scaled from torch's, so it would read as dropped or
    mis-scaled.
    """
    valid = np.abs(inputs) >= np.finfo(np.float32).tiny
    dropped = valid & (outputs == 0)
    kept = valid & ~dropped
    ratio = outputs[kept].astype(np.float64) / inputs[kept]
    return {"dropped": dropped, "valid": valid, "units": int(valid.sum()),
            "n_dropped": int(dropped.sum()),
            "scale_min": float(ratio.min()) if ratio.size else None,
            "scale_max": float(ratio.max()) if ratio.size else None}


def site_summary(observations: list[dict], rate: float) -> dict:
    """Pooled over calls: the fraction dropped (with a 95% binomial interval) and the scale."""
    units = sum(o["units"] for o in observations)
    dropped = sum(o["n_dropped"] for o in observations)
    fraction = dropped / units if units else 0.0
    half = 1.96 * math.sqrt(max(fraction * (1 - fraction), 1e-12) / max(units, 1))
    scales = [o for o in observations if o["scale_min"] is not None]
    return {"rate": rate, "calls": len(observations), "units": units,
            "dropped_fraction": round(fraction, 5),
            "dropped_fraction_ci95": [round(fraction - half, 5), round(fraction + half, 5)],
            "kept_scale_min": min(o["scale_min"] for o in scales) if scales else None,
            "kept_scale_max": max(o["scale_max"] for o in scales) if scales else None,
            "expected_scale": 1 / (1 - rate) if rate < 1 else None}


def phi(a: dict, b: dict, index_a=(), index_b=()) -> tuple[float, int, bool]:
    """Correlation of two drop masks (cropped to their common shape, units valid in both):
    (phi coefficient, units compared, identical). Independent masks give phi ~ N(0, 1/n)."""
    da, va = a["dropped"][index_a], a["valid"][index_a]
    db, vb = b["dropped"][index_b], b["valid"][index_b]
    if da.ndim != db.ndim:
        raise ValueError("masks of different rank")
    crop = tuple(slice(0, min(x, y)) for x, y in zip(da.shape, db.shape))
    valid = va[crop] & vb[crop]
    x, y = da[crop][valid], db[crop][valid]
    n = int(valid.sum())
    if n == 0:
        return 0.0, 0, False
    px, py, pxy = x.mean(), y.mean(), (x & y).mean()
    denominator = math.sqrt(px * (1 - px) * py * (1 - py))
    return (float((pxy - px * py) / denominator) if denominator else 0.0), n, bool(
        np.array_equal(x, y))


class Family:
    """Max |z| (z = phi * sqrt(n)) and identical pairs over one family of mask pairs."""

    def __init__(self):
        self.pairs = self.identical = 0
        self.max_abs_z = self.max_abs_phi = 0.0

    def add(self, value: float, n: int, identical: bool) -> None:
        self.pairs += 1
        self.identical += int(identical)
        self.max_abs_phi = max(self.max_abs_phi, abs(value))
        self.max_abs_z = max(self.max_abs_z, abs(value) * math.sqrt(n))

    def result(self) -> dict:
        # With k independent pairs, max |z| rarely exceeds ~sqrt(2 ln 2k) + 1.
        return {"pairs": self.pairs, "identical": self.identical,
                "max_abs_phi": round(self.max_abs_phi, 5), "max_abs_z": round(self.max_abs_z, 2),
                "max_abs_z_if_independent_about": round(
                    math.sqrt(2 * math.log(2 * max(self.pairs, 1))) + 1, 1)}


def independence(masks: dict) -> dict:
    """Mask correlations of {(epoch, step, site): observation} over every pair of recorded
    calls of the same rank, grouped by what they share, plus within a call: heads (attention
    probabilities) and examples of one batch."""
    families = {name: Family() for name in (
        "same_step_other_site", "same_site_other_step", "same_site_step_other_epoch",
        "other_site_other_step", "heads_within_call", "examples_within_call")}
    keys = sorted(masks)
    for ka, kb in itertools.combinations(keys, 2):
        a, b = masks[ka], masks[kb]
        if a["dropped"].ndim != b["dropped"].ndim:
            continue
        same_site, same_step = ka[2] == kb[2], ka[:2] == kb[:2]
        if same_site and ka[1] == kb[1]:
            family = "same_site_step_other_epoch"
        elif same_site:
            family = "same_site_other_step"
        elif same_step:
            family = "same_step_other_site"
        else:
            family = "other_site_other_step"
        families[family].add(*phi(a, b))
    for key in keys:
        m = masks[key]
        if "attention_probs" in key[2]:
            for h, g in itertools.combinations(range(m["dropped"].shape[1]), 2):
                families["heads_within_call"].add(*phi(m, m, (slice(None), h),
                                                       (slice(None), g)))
        for j in range(1, m["dropped"].shape[0]):
            families["examples_within_call"].add(*phi(m, m, (0,), (j,)))
    return {name: f.result() for name, f in families.items()}


def t_interval(differences: list[float], level: float = 0.95) -> dict:
    """Mean of paired differences with its Student-t confidence interval."""
    from scipy import stats  # only where the interval is computed (the TensorFlow side)

    n = len(differences)
    mean = float(np.mean(differences))
    sd = float(np.std(differences, ddof=1)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n) if n > 1 else math.inf
    return {"n": n, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


# ----------------------------------------------------------------------------------------------
# The torch side
# ----------------------------------------------------------------------------------------------
def _load(args, torch, transformers):
    batches = load_batches(args.batches)
    model = transformers.BertForTokenClassification.from_pretrained(
        args.model, num_labels=int(np.load(args.batches)["num_labels"]),
        attn_implementation="eager", hidden_dropout_prob=args.dropout,
        attention_probs_dropout_prob=args.dropout)
    optimizer = adamw(model, args.learning_rate)
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, max(1, len(batches) // 10), len(batches))

    def step(ids, mask, labels) -> float:
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        return apply_gradients(loss, model, optimizer, schedule)

    return model, batches, step


def _patch_dropout(torch, replace):
    """Routes every `torch.nn.functional.dropout` call through `replace(original, x, p,
    training)`."""
    original = torch.nn.functional.dropout

    def dropout(x, p=0.5, training=True, inplace=False):
        return replace(original, x, p, training)

    torch.nn.functional.dropout = dropout


def sites(args, torch, transformers) -> dict:
    model, batches, step = _load(args, torch, transformers)
    names = site_names(model.config.num_hidden_layers)
    calls = []

    def record(original, x, p, training):
        out = original(x, p, training)
        calls.append((p, training, x.detach().numpy().copy(), out.detach().numpy().copy()))
        return out

    _patch_dropout(torch, record)
    model.train()
    masks, per_site, row_sum_error = {}, {name: [] for name in names}, 0.0
    for s, batch in enumerate(batches[:args.steps]):
        calls.clear()
        step(*batch)
        if len(calls) != len(names):
            raise RuntimeError(f"{len(calls)} dropout calls in a step, expected {len(names)}")
        for name, (p, training, x, out) in zip(names, calls):
            if name.endswith("attention_probs"):  # softmax rows of the keys sum to 1
                row_sum_error = max(row_sum_error, float(np.abs(x.sum(-1) - 1).max()))
            o = observe(x, out)
            per_site[name].append(o)
            masks[(0, s, name)] = o
    summary = {name: site_summary(obs, calls[i][0]) | {"training": calls[i][1],
                                                     "shape_of_last": list(calls[i][2].shape)}
               for i, (name, obs) in enumerate(per_site.items())}
    model.eval()
    calls.clear()
    with torch.no_grad():
        model(input_ids=batches[0][0], attention_mask=batches[0][1])
    eval_changed = sum(int(not np.array_equal(x, out)) for _, _, x, out in calls)
    return {"sites": summary, "independence": independence(masks),
            "attention_probs_input_row_sum_max_error": row_sum_error,
            "eval_mode": {"calls": len(calls), "training_flags": sorted({c[1] for c in calls}),
                          "calls_that_changed_their_input": eval_changed},
            "torch_rng": "one global generator (torch.manual_seed), drawn in call order"}


def replay(args, torch, transformers) -> dict:
    model, batches, step = _load(args, torch, transformers)
    names = site_names(model.config.num_hidden_layers)
    z = np.load(args.classifier)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor(z["kernel"].T))
        model.classifier.bias.copy_(torch.tensor(z["bias"]))
    masks = np.load(args.masks)
    position = {"step": 0, "call": 0}

    def replayed(original, x, p, training):
        if not training or p == 0:
            return x
        s, k = position["step"], position["call"]
        position["call"] += 1
        keep = torch.tensor(masks[f"s{s}_{names[k]}"])
        if tuple(keep.shape) != tuple(x.shape):
            raise RuntimeError(f"step {s} {names[k]}: mask {tuple(keep.shape)} for a tensor "
                               f"{tuple(x.shape)}")
        return x * keep / (1 - p)

    if not args.own_masks:
        _patch_dropout(torch, replayed)
    model.train()
    losses = []
    for s, batch in enumerate(batches):
        position.update(step=s, call=0)
        losses.append(step(*batch))
    model.save_pretrained(os.path.join(args.out, "hf_trained"))
    save_classifier(model, os.path.join(args.out, "classifier_trained.npz"), "kernel")
    return {"losses": losses, "masks": "torch's own" if args.own_masks else "tfmask's"}


def train(args, torch, transformers) -> dict:
    model, batches, step = _load(args, torch, transformers)
    save_classifier(model, os.path.join(args.out, "classifier_init.npz"), "kernel")
    model.train()
    losses = [step(*batch) for batch in batches]
    model.save_pretrained(os.path.join(args.out, "hf_trained"))
    save_classifier(model, os.path.join(args.out, "classifier_trained.npz"), "kernel")
    return {"losses": losses}


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("--model", "--batches", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--mode", choices=["sites", "replay", "train"], required=True)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=4, help="sites: training steps observed")
    p.add_argument("--masks", help="replay: tfmask's masks (.npz)")
    p.add_argument("--classifier", help="replay: tfmask's initial classifier (.npz)")
    p.add_argument("--own-masks", action="store_true", help="replay: torch's masks instead")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    result = {"sites": sites, "replay": replay, "train": train}[args.mode](
        args, torch, transformers)
    result.update(torch=torch.__version__, transformers=transformers.__version__)
    name = f"hf_{args.mode}{'_own' if args.own_masks else ''}.json"
    with open(os.path.join(args.out, name), "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
