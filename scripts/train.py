"""Train the learned denoisers: one model per (architecture, noise kind).

Writes into a fresh run folder ``runs/<arch>-<noise>-<UTC time>/`` (git-ignored) unless ``--out``
names another; replacing a checkpoint already there needs ``--force``.

Examples
--------
python scripts/train.py --data .cache/faces --arch all --noise all
python scripts/train.py --data lfw --arch unet_l1 --noise gaussian --epochs 2 --limit 64   # smoke run
python scripts/train.py --data .cache/faces --arch pix2pix --noise all --resume            # after Ctrl-C
python scripts/train.py --data .cache/faces --arch all --noise all --out checkpoints --force  # replace shipped
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from denoising.catalogue import ARCHS, DEFAULT_PRESET, NOISE_KINDS, PRESET_PARAMS, SCHEDULES, SELECT_ON
from denoising.cli import positive_int


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (so ``--lr 0``, ``nan``, ``inf`` and negatives are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train denoising models per noise kind (the post's autoencoder, pix2pix and "
                                "U-Net L1 at one preset strength; unet_range over the whole strength range); writes "
                                "<out>/<arch>-<noise>.safetensors + .json.")
    p.add_argument("--arch", choices=(*ARCHS, "all"), default="all", help="model recipe to train, or all of them")
    p.add_argument("--noise", choices=(*NOISE_KINDS, "all"), default="all", help="noise kind to train for, or all four")
    p.add_argument("--preset", choices=tuple(PRESET_PARAMS), default=DEFAULT_PRESET,
                   help=f"noise strengths, from denoising.catalogue.PRESET_PARAMS (default: {DEFAULT_PRESET})")
    p.add_argument("--data", required=True,
                   help="prepared face cache folder (from scripts/prepare_data.py), or 'lfw' for a quick smoke run "
                        "on scikit-image's 100 LFW faces (80 train / 20 validation)")
    p.add_argument("--epochs", type=positive_int, default=60,
                   help="epochs to run (default 60; with --schedule plateau, early stopping may end sooner)")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                   help="cosine (default): the learning rate decays to zero over --epochs and every epoch runs; "
                        "plateau: halve the rate and stop early when validation stops improving (the rule the "
                        "per-preset checkpoints were trained with)")
    p.add_argument("--select-on", choices=SELECT_ON, default="val_psnr",
                   help="validation score that picks the kept epoch (default val_psnr)")
    p.add_argument("--patience", type=positive_int, default=6,
                   help="with --schedule plateau: stop after this many epochs without a validation improvement")
    p.add_argument("--min-improvement", type=fraction, default=0.002,
                   help="with --select-on val_mae: smallest relative validation-MAE decrease that counts as an "
                        "improvement and replaces the kept epoch (default 0.002 = 0.2%%)")
    p.add_argument("--lr-patience", type=positive_int, default=2,
                   help="with --schedule plateau: halve the learning rate after this many epochs in a row without "
                        "improvement (default 2)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="faces per training step")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="Adam learning rate, a positive number (default 1e-3 for all three, this project's choice; "
                        "the post trained pix2pix with 2e-4 and beta1 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, shuffling and noise")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint folder (default: a new run folder runs/<arch>-<noise>-<UTC time>/; with --resume, "
                        "the newest such folder); resume state goes to <out>/resume/")
    p.add_argument("--force", action="store_true",
                   help="allow replacing checkpoints that already exist in --out (e.g. --out checkpoints)")
    p.add_argument("--resume", action="store_true",
                   help="continue interrupted runs from <out>/resume/ (runs without a resume state start fresh)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CUDA when available, else CPU")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training faces (smoke tests)")
    p.add_argument("--val-limit", type=positive_int, default=None, help="use only the first N validation faces")
    p.add_argument("--weights-dtype", choices=("float16", "float32"), default="float16",
                   help="storage dtype of the shipped weights")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: all cores)")
    p.add_argument("--verbose", action="store_true", help="log every epoch and checkpoint write")
    return p


def plan_from_args(args: argparse.Namespace):
    """The library's :class:`~denoising.training.TrainPlan` for the parsed flags."""
    from denoising.training import TrainConfig, TrainPlan

    config = TrainConfig(max_epochs=args.epochs, schedule=args.schedule, select_on=args.select_on,
                         patience=args.patience, min_improvement=args.min_improvement,
                         lr_patience=args.lr_patience, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         weights_dtype=args.weights_dtype, limit=args.limit, val_limit=args.val_limit,
                         num_threads=args.threads)
    return TrainPlan(archs=ARCHS if args.arch == "all" else (args.arch,),
                     kinds=NOISE_KINDS if args.noise == "all" else (args.noise,), data=args.data, config=config,
                     preset=args.preset, out_dir=args.out, resume=args.resume, overwrite=args.force,
                     device=args.device)


class Progress:
    """Console report: the plan, a tqdm bar per model (loss, time left as an upper bound), one line per epoch."""

    def __init__(self):
        self.bar = None

    def __call__(self, event: dict) -> None:
        from tqdm import tqdm

        kind = event["event"]
        if kind == "plan":
            print(f"device: {event['device']} ({event['device_name']}); training {event['models']} model(s) "
                  f"into {event['out_dir']}", flush=True)
        elif kind == "fresh":
            print(f"{event['name']}: {event['reason']}", flush=True)
        elif kind == "start":
            self.close()
            total = max(0, event["max_epochs"] - event["start_epoch"]) * event["batches"]
            self.bar = tqdm(total=total, desc=event["name"], unit="batch", dynamic_ncols=True)
        elif kind == "batch":
            self.bar.update(1)
            if event["batch"] % 10 == 0 or event["batch"] == event["batches"]:
                self.bar.set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.4f}")
        elif kind == "epoch":
            self.bar.write(f"{event['name']} epoch {event['epoch']}: loss {event['train_loss']:.5f}  "
                           f"val MAE {event['val_mae']:.5f}  val PSNR {event['val_psnr']:.2f} dB  "
                           f"{event['images_per_s']:.0f} img/s  (kept epoch {event['best_epoch']})")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def report(outcomes: list) -> int:
    """Print one line per model and a total; exit status 1 when a model diverged."""
    for outcome in outcomes:
        result = outcome.result
        if result is None:
            print(f"error: {outcome.error}", file=sys.stderr)
            continue
        kept = next((h for h in result.history if h["epoch"] == result.best_epoch), None)
        scores = f"val MAE {kept['val_mae']:.5f}, val PSNR {kept['val_psnr']:.2f} dB" if kept else "no new epochs"
        print(f"{outcome.name}: kept epoch {result.best_epoch} of {result.epochs} run ({result.stopped}); "
              f"{scores}; {outcome.minutes:.1f} min -> {result.checkpoint}", flush=True)
    failed = [o.name for o in outcomes if o.result is None]
    print(f"done: {len(outcomes) - len(failed)} model(s) trained in {sum(o.minutes for o in outcomes):.1f} min"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from denoising.models.checkpoint import CheckpointError
    from denoising.training import TrainingSetupError, train_models

    progress = Progress()
    try:
        outcomes = train_models(plan_from_args(args), progress=progress)
    except KeyboardInterrupt:
        print("\ninterrupted: finished epochs are saved; continue with the same command plus --resume",
              file=sys.stderr)
        return 130
    except (TrainingSetupError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.close()
    return report(outcomes)


if __name__ == "__main__":
    sys.exit(main())
