"""Training-curve plots (matplotlib, headless)."""

from __future__ import annotations


def plot_history(records: list[dict], path: str) -> None:
    """Loss and masked-accuracy curves (train and, when present, eval) against the step."""
    import matplotlib

    matplotlib.use("Agg")  # no display in Colab background jobs, CI or servers
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "loss", "MLM loss"),
                           (axes[1], "masked_accuracy", "masked-token accuracy")):
        ax.plot(steps, [r[key] for r in records], marker=".", label="train")
        evals = [(r["step"], r[f"eval_{key}"]) for r in records if f"eval_{key}" in r]
        if evals:
            ax.plot(*zip(*evals), marker=".", label="eval")
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_finetune_history(records: list[dict], path: str, metric: str) -> None:
    """Fine-tuning curves per epoch: train/validation loss, and the validation `metric`."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(epochs, [r["loss"] for r in records], marker="o", label="train")
    axes[0].plot(epochs, [r["val_loss"] for r in records], marker="o", label="validation")
    axes[0].set_title("loss")
    axes[1].plot(epochs, [r[f"val_{metric}"] for r in records], marker="o", color="C1",
                 label=f"validation {metric}")
    axes[1].set_title(f"validation {metric}")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_per_type_f1(per_type: dict[str, dict], path: str) -> None:
    """Bar chart of entity F1 per type (NER), with each type's support in the label."""
    plt = _pyplot()
    types = sorted(per_type)
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(types) + 2), 4))
    bars = ax.bar([f"{t}\n(n={per_type[t]['support']})" for t in types],
                  [per_type[t]["f1"] for t in types], color="C0")
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("entity F1")
    ax.set_title("validation F1 per entity type")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(matrix: list[list[int]], label_names: list[str], path: str) -> None:
    """Confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    plt = _pyplot()
    n = len(label_names)
    fig, ax = plt.subplots(figsize=(2 + 0.9 * n, 1.6 + 0.9 * n))
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
