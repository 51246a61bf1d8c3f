"""Training-curve plots, written as PNG files.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`), not `pyplot`: no
display is needed (servers, CI), and a notebook's own backend and open figures are left as
they are. Each function returns the figure it saved.
"""

from __future__ import annotations


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def plot_history(records: list[dict], path: str):
    """Pretraining curves against the step: loss and masked accuracy (train and, when present,
    eval) and the learning rate."""
    steps = [r["step"] for r in records]
    fig = _figure(15, 4)
    axes = fig.subplots(1, 3)
    for ax, key, title in ((axes[0], "loss", "MLM loss"),
                           (axes[1], "masked_accuracy", "masked-token accuracy")):
        ax.plot(steps, [r[key] for r in records], marker=".", label="train")
        evals = [(r["step"], r[f"eval_{key}"]) for r in records if f"eval_{key}" in r]
        if evals:
            ax.plot(*zip(*evals), marker=".", label="eval")
        ax.set_title(title)
        ax.legend()
    _plot_learning_rate(axes[2], steps, [r["learning_rate"] for r in records], marker=".")
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_xlim(0, max(steps) * 1.02)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_finetune_history(records: list[dict], path: str, metric: str,
                          steps: list[dict] | None = None):
    """Fine-tuning curves: loss (training every few steps from `steps`, the records of
    `train_steps.json`, and validation at each epoch end), the validation `metric` with the
    best epoch marked, and the learning rate.

    Against the step when `steps` is given (epoch ends dotted); otherwise against the epoch,
    with integer ticks.
    """
    epochs = [r["epoch"] for r in records]
    if steps:
        ends = {}
        for s in steps:  # an epoch's last record is at its last step
            ends[s["epoch"]] = max(ends.get(s["epoch"], 0), s["step"])
        x = [ends.get(e) for e in epochs]
        if None in x:  # records of epochs trained before the per-step record existed
            steps = None
    if not steps:
        x = epochs
    fig = _figure(15, 4)
    axes = fig.subplots(1, 3)

    ax = axes[0]
    if steps:
        sx, sy = [s["step"] for s in steps], [s["loss"] for s in steps]
        window = max(1, len(sy) // 20)
        if window > 1:
            ax.plot(sx, sy, color="C0", alpha=0.3, lw=1, label="train")
            ax.plot(sx, _moving_average(sy, window), color="C0",
                    label=f"train, moving average of {window}")
        else:
            ax.plot(sx, sy, color="C0", label="train")
    else:
        ax.plot(x, [r["loss"] for r in records], marker="o", label="train (epoch mean)")
    ax.plot(x, [r["val_loss"] for r in records], marker="o", color="C1", label="validation")
    ax.set_title("loss")
    ax.legend()

    ax = axes[1]
    values = [r[f"val_{metric}"] for r in records]
    best = values.index(max(values))
    ax.plot(x, values, marker="o", color="C1", label=f"validation {metric}")
    ax.plot([x[best]], [values[best]], marker="*", markersize=16, color="C3", ls="none",
            clip_on=False, label=f"best: epoch {epochs[best]}, {values[best]:.4f}")
    low, high = min(values), max(values)
    pad = max(0.05, 0.15 * (high - low))
    if 0.0 <= low and high <= 1.0:  # a score: keep the axis inside [0, 1]
        ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad))
    ax.set_title(f"validation {metric}")
    ax.legend(loc="lower right")

    ax = axes[2]
    if steps:
        _plot_learning_rate(ax, [s["step"] for s in steps], [s["learning_rate"] for s in steps])
    else:
        _plot_learning_rate(ax, x, [r["learning_rate"] for r in records], marker="o")

    for ax in axes:
        ax.grid(alpha=0.3)
        if steps:
            boundaries = x[:-1] if len(x) <= 20 else []
            ax.set_xlabel("step (dotted: epoch ends)" if boundaries else "step")
            ax.set_xlim(0, max(s["step"] for s in steps) * 1.02)
            for end in boundaries:
                ax.axvline(end, color="grey", ls=":", lw=0.8)
        else:
            ax.set_xlabel("epoch")
            ax.set_xticks(epochs)
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    return _save(fig, path)


def _plot_learning_rate(ax, x, rates, **style) -> None:
    ax.plot(x, rates, color="C2", **style)
    ax.set_title("learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.set_ylim(bottom=0)


def _moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over `window` values (the first ones over what there is); `values`
    itself when `window` is 1."""
    if window <= 1:
        return values
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _save(fig, path: str):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


def plot_per_type_f1(per_type: dict[str, dict], path: str):
    """Bar chart of entity F1 per type (NER), with each type's support in the label."""
    types = sorted(per_type)
    fig = _figure(max(4, 1.2 * len(types) + 2), 4)
    ax = fig.subplots()
    bars = ax.bar([f"{t}\n(n={per_type[t]['support']})" for t in types],
                  [per_type[t]["f1"] for t in types], color="C0")
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("entity F1")
    ax.set_title("validation F1 per entity type")
    return _save(fig, path)


def plot_confusion_matrix(matrix: list[list[int]], label_names: list[str], path: str):
    """Confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    n = len(label_names)
    fig = _figure(2.4 + 0.9 * n, 1.6 + 0.9 * n)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    peak = max((max(row) for row in matrix), default=0)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center",
                    color="white" if matrix[i][j] > peak / 2 else "black")
    ax.set_xticks(range(n), label_names)
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("validation confusion matrix")
    return _save(fig, path)
