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
