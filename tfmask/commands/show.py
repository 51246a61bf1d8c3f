"""`tfmask show RUN`: what a run directory is, at a glance.

For a pretraining, import or fine-tuning run: its kind and state (finished, or how far an
unfinished one got), where it came from (corpus, checkpoint, `--init` run), the encoder, the
configuration that matters, the best metrics and their epoch (step for pretraining), and the
paths of its plots, TensorBoard logs, evaluations and exports. `--json` prints the same as
one JSON object. It reads the run's JSON files only (`tfmask.runs`), never a model.
"""

from __future__ import annotations

import json
import os

from tfmask.commands import add_common
from tfmask.validation import check_run_dir

#: The headline metrics of a fine-tuning task, in the order they are shown.
_METRICS = {"ner": ("f1", "precision", "recall"), "sentiment": ("accuracy", "macro_f1"),
            "classify": ("accuracy", "macro_f1")}
_PLOTS = ("history.png", "per_type_f1.png", "confusion_matrix.png")


def describe(run_dir: str) -> dict:
    """What `tfmask show` prints, as a dict: `run`, `kind`, `state`, `source`, `encoder`,
    `config`, `metrics`, `files` (plots, tensorboard, evaluations, exports), `environment`."""
    from tfmask import runs

    kind = runs.run_kind(run_dir)
    config = runs.read_config(run_dir)
    out = {"run": run_dir, "kind": kind, **_DESCRIBE[kind](runs, run_dir, config),
           "encoder": config.get("encoder"),
           "lower_case": config.get("tokenizer", {}).get("lower_case"),
           "files": _files(runs, run_dir)}
    environment = runs.read_run_json(run_dir, runs.ENVIRONMENT) or []
    if environment:
        first = environment[0]
        out["environment"] = {"packages": first.get("packages"),
                              "git_revision": first.get("git_revision")}
    return out


def _pretrain(runs, run_dir: str, config: dict) -> dict:
    d, t, m = config["data"], config["train"], config["masking"]
    history = runs.read_run_json(run_dir, "history.json", [])
    last = history[-1] if history else None
    finished = runs.is_finished(run_dir, "pretrain")
    state = "finished" if finished else (
        f"unfinished: {last['step'] if last else 0} of {t['steps']} steps "
        "(re-run the same command to resume)")
    evaluated = [r for r in history if "eval_masked_accuracy" in r]
    best = max(evaluated, key=lambda r: r["eval_masked_accuracy"], default=None)
    vocab = config["tokenizer"]
    return {
        "state": state,
        "source": {"corpus": d.get("corpus"), "tfds": d.get("tfds"),
                   "eval_corpus": d.get("eval_corpus") or None,
                   "eval_holdout": None if d.get("eval_corpus") else d.get("eval_holdout"),
                   "vocab": vocab.get("vocab") or (
                       f"the --init run's, {vocab['vocabulary_size']} tokens" if t.get("init")
                       else f"learned, {vocab['vocabulary_size']} tokens"),
                   **(_init_source(runs, t["init"]) if t.get("init") else {})},
        "config": {"preset": None if t.get("init") else t.get("preset"), "steps": t.get("steps"),
                   "batch_size": t.get("batch_size"), "learning_rate": t.get("learning_rate"),
                   "max_sequence_length": d.get("max_sequence_length"),
                   "masking": f"{m.get('strategy')} {m.get('selection_rate', 0):.0%}" + (
                       f" -> {m['final_selection_rate']:.0%}"
                       if m.get("final_selection_rate") is not None else ""),
                   "strategy": t.get("strategy"),
                   "precision": t.get("precision", t.get("mixed_precision") or "float32"),
                   "seed": t.get("seed")},
        "metrics": {"last": last, "best_eval": None if best is None else {
            "step": best["step"], "eval_masked_accuracy": best["eval_masked_accuracy"],
            "eval_loss": best.get("eval_loss")}},
    }


def _import(runs, run_dir: str, config: dict) -> dict:
    report = runs.read_run_json(run_dir, "import_report.json", {})
    source = dict(config.get("source") or {})
    source.update({k: report[k] for k in ("imported", "masked_lm_head", "skipped",
                                          "initialized_randomly", "unknown") if k in report})
    return {"state": "finished", "source": source, "config": {}, "metrics": {}}


def _init_source(runs, init: str) -> dict:
    """Where an `--init` run came from: its path, kind, and for an import the checkpoint."""
    source = {"init": init}
    if os.path.exists(os.path.join(init, runs.CONFIG)):
        source["init_kind"] = runs.run_kind(init)
        if source["init_kind"] == "import":
            source["checkpoint"] = runs.read_config(init).get("source")
    return source


def _finetune(runs, run_dir: str, config: dict) -> dict:
    d, t, task = config["data"], config["train"], config["task"]
    history = runs.read_run_json(run_dir, "history.json", [])
    best = runs.read_run_json(run_dir, "metrics.json")
    finished = runs.is_finished(run_dir, "finetune")
    state = "finished" if finished else (
        f"unfinished: {len(history)} of {t['epochs']} epochs "
        "(re-run the same command to resume)")
    init = t.get("init")
    source = _init_source(runs, init) if init else {"init": None, "random": t.get("preset")}
    data = {"train": d.get("train"), "valid": d.get("valid"), "tfds": d.get("tfds")}
    if not (d.get("train") or d.get("tfds")):
        data["train"] = "the embedded data set"
    if d.get("text_pair_column"):
        data["pairs"] = [d.get("text_column"), d.get("text_pair_column")]
    metrics = {}
    if best:
        metrics = {"epoch": best.get("epoch"),
                   **{k: best[k] for k in _METRICS.get(task, ()) if k in best},
                   "examples": best.get("examples")}
        if "per_type" in best:
            metrics["per_type_f1"] = {k: v["f1"] for k, v in best["per_type"].items()}
    return {
        "state": state, "task": task, "source": source, "data": data,
        "labels": config.get("labels"),
        "config": {"epochs": t.get("epochs"), "epochs_run": len(history),
                   "batch_size": t.get("batch_size"), "learning_rate": t.get("learning_rate"),
                   "max_sequence_length": d.get("max_sequence_length"),
                   "max_train_examples": d.get("max_train_examples") or None,
                   "dropout": t.get("dropout"), "seed": t.get("seed"),
                   "precision": t.get("precision", t.get("mixed_precision") or "float32")},
        "metrics": metrics,
    }


_DESCRIBE = {"pretrain": _pretrain, "import": _import, "finetune": _finetune}


def _files(runs, run_dir: str) -> dict:
    def there(name):
        return os.path.exists(os.path.join(run_dir, name))

    evaluations = os.path.join(run_dir, "evaluations")
    return {
        "plots": [os.path.join(run_dir, p) for p in _PLOTS if there(p)],
        "tensorboard": os.path.join(run_dir, "tensorboard") if there("tensorboard") else None,
        "evaluations": sorted(os.path.join(evaluations, n) for n in os.listdir(evaluations)
                              if n.endswith(".json")) if os.path.isdir(evaluations) else [],
        "exports": runs.read_run_json(run_dir, runs.EXPORTS, []),
    }


# ----------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------
def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _pairs(values: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {_number(v)}" for k, v in values.items()
                     if v is not None)


def _encoder(e: dict | None, lower_case) -> str:
    if not e:
        return "?"
    case = "" if lower_case is None else (", uncased" if lower_case else ", cased")
    return (f"{e['num_layers']} layers, hidden {e['hidden_dim']}, {e['num_heads']} heads, "
            f"intermediate {e['intermediate_dim']}, vocabulary {e['vocabulary_size']:,}"
            f"{case}, {e.get('activation', 'gelu')}")


def _source_line(info: dict) -> str:
    s = info["source"]
    if info["kind"] == "pretrain":
        text = s["tfds"] and f"TFDS {s['tfds']}" or ", ".join(s["corpus"] or [])
        held = (f"eval corpus {', '.join(s['eval_corpus'])}" if s["eval_corpus"]
                else f"{s['eval_holdout']:.0%} of the lines held out for eval")
        line = f"{text}; {held}; vocabulary {s['vocab']}"
        return line + (f"; continued from {_init_line(s)}" if s.get("init") else "")
    if info["kind"] == "import":
        head = "with" if s.get("masked_lm_head") else "without"
        return (f"{s.get('path')} ({s.get('format')}): {s.get('imported', '?')} tensors, "
                f"{head} the MLM head")
    if not s.get("init"):
        return f"a random {s.get('random')} encoder (no --init)"
    return _init_line(s)


def _init_line(s: dict) -> str:
    line = s["init"] + (f" ({s['init_kind']} run" if s.get("init_kind") else " (not found")
    checkpoint = s.get("checkpoint")
    if checkpoint:
        line += f" of {checkpoint.get('path')}, {checkpoint.get('format')}"
    return line + ")"


def format_text(info: dict) -> str:
    """`describe`'s dict as the lines `tfmask show` prints."""
    kind = {"pretrain": "pretraining", "import": "imported checkpoint",
            "finetune": f"fine-tuning ({info.get('task')})"}[info["kind"]]
    rows = [("from", _source_line(info)),
            ("encoder", _encoder(info["encoder"], info.get("lower_case")))]
    if info["kind"] == "finetune":
        data = info["data"]
        line = ", ".join(f"{k} {v}" for k, v in data.items() if v and k != "pairs")
        if data.get("pairs"):
            line += f"; sentence pairs ({' + '.join(map(str, data['pairs']))})"
        labels = info.get("labels") or []
        names = sorted({label.split("-", 1)[-1] for label in labels if label != "O"}
                       ) if info.get("task") == "ner" else labels
        rows.append(("data", f"{line}; {len(labels)} labels ({', '.join(names)})"))
    if info["config"]:
        rows.append(("config", _pairs(info["config"])))
    m = info["metrics"]
    if info["kind"] == "pretrain":
        if m.get("last"):
            last = {k: v for k, v in m["last"].items() if k not in ("step", "wall_time")}
            rows.append(("last", f"step {m['last']['step']:,}: {_pairs(last)}"))
        if m.get("best_eval"):
            best = {k: v for k, v in m["best_eval"].items() if k != "step"}
            rows.append(("best", f"step {m['best_eval']['step']:,}: {_pairs(best)}"))
    elif info["kind"] == "finetune" and m:
        headline = {k: v for k, v in m.items()
                    if k not in ("epoch", "per_type_f1", "examples")}
        rows.append(("best", f"epoch {m.get('epoch')}: {_pairs(headline)} (validation, "
                             f"{_number(m.get('examples'))} examples)"))
        if m.get("per_type_f1"):
            rows.append(("per type F1", _pairs(m["per_type_f1"])))
    files = info["files"]
    for label, value in (("plots", files["plots"]), ("evaluations", files["evaluations"])):
        if value:
            rows.append((label, ", ".join(value)))
    if files["tensorboard"]:
        rows.append(("tensorboard", f"tensorboard --logdir {files['tensorboard']}"))
    for e in files["exports"]:
        rows.append(("export", f"{e['text']} (serve_text, serve), {e['ids']} (serve); "
                               f"{e['kind']}, {e['time']}"))
    env = info.get("environment")
    if env and env.get("packages"):
        packages = env["packages"]
        line = ", ".join(f"{k} {v}" for k, v in packages.items())
        if env.get("git_revision"):
            line += f"; git {env['git_revision'][:12]}"
        rows.append(("software", line))
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join([f"{info['run']}: {kind}, {info['state']}"]
                     + [f"  {label + ':':<{width}} {value}" for label, value in rows])


# ----------------------------------------------------------------------------------------------
# Command
# ----------------------------------------------------------------------------------------------
def _add_show_parser(sub) -> None:
    p = sub.add_parser(
        "show", help="what a run is: kind, source, config, best metrics, plots, exports",
        description="Print what a pretraining, import or fine-tuning run directory holds: "
                    "its kind and state, where it came from (corpus, checkpoint, --init run), "
                    "the encoder, the key configuration, the best metrics and their epoch "
                    "(step), and the paths of its plots, TensorBoard logs, evaluations and "
                    "exports. Reads JSON files only.")
    add_common(p)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")


def _check_show(args) -> None:
    check_run_dir(args.run, names=("config.json",), what="a tfmask run directory")


def _run_show(args, _) -> int:
    info = describe(args.run)
    if args.json:
        print(json.dumps(info))
    else:
        print(format_text(info))
    return 0


COMMANDS = {"show": (_add_show_parser, _check_show, _run_show)}
