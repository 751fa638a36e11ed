"""Train the learned denoisers: one model per (architecture, noise kind).

Examples
--------
python scripts/train.py --data .cache/faces --arch all --noise all
python scripts/train.py --data lfw --arch unet_l1 --noise gaussian --epochs 2 --limit 64   # smoke run
python scripts/train.py --data .cache/faces --arch pix2pix --noise all --resume            # after Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARCHS = ("autoencoder", "pix2pix", "unet_l1")
NOISE_KINDS = ("gaussian", "poisson", "salt_pepper", "speckle")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train denoising models (autoencoder, pix2pix, U-Net L1) per noise kind; "
                                "writes <out>/<arch>-<noise>.safetensors + .json.")
    p.add_argument("--arch", choices=ARCHS + ("all",), default="all", help="model recipe to train, or all three")
    p.add_argument("--noise", choices=NOISE_KINDS + ("all",), default="all", help="noise kind to train for, or all four")
    p.add_argument("--preset", default="post", help="noise preset name in denoising.noise.PRESETS (default: post)")
    p.add_argument("--data", required=True,
                   help="prepared face cache folder (from scripts/prepare_data.py), or 'lfw' for a quick smoke run "
                        "on scikit-image's 100 LFW faces (80 train / 20 validation)")
    p.add_argument("--epochs", type=int, default=60, help="maximum epochs (early stopping usually ends sooner)")
    p.add_argument("--patience", type=int, default=6,
                   help="stop after this many epochs without validation-MAE improvement")
    p.add_argument("--min-improvement", type=float, default=0.002,
                   help="smallest relative validation-MAE decrease that counts as an improvement (default 0.002 = 0.2%%)")
    p.add_argument("--lr-patience", type=int, default=2,
                   help="halve the learning rate after this many epochs in a row without improvement (default 2)")
    p.add_argument("--batch-size", type=int, default=64, help="faces per training step")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 1e-3 for all; the post used 2e-4 for pix2pix, which converges slower)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, shuffling and noise")
    p.add_argument("--out", type=Path, default=Path("checkpoints"),
                   help="checkpoint folder (resume state goes to <out>/resume/)")
    p.add_argument("--resume", action="store_true",
                   help="continue interrupted runs from <out>/resume/ (runs without a resume state start fresh)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CUDA when available, else CPU")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training faces (smoke tests)")
    p.add_argument("--val-limit", type=int, default=None, help="use only the first N validation faces")
    p.add_argument("--weights-dtype", choices=("float16", "float32"), default="float16",
                   help="storage dtype of the shipped weights")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores)")
    p.add_argument("--verbose", action="store_true", help="log every epoch and checkpoint write")
    return p


def load_faces(data: str, parser: argparse.ArgumentParser):
    """Return (faces, data_summary): a FaceSet or (train, val) arrays."""
    if data == "lfw":
        from denoising.faces import load_lfw_faces

        images = load_lfw_faces(28).images
        return (images[:80], images[80:]), {"data": "lfw (scikit-image lfw_subset, smoke run)"}
    path = Path(data)
    if not path.is_dir():
        parser.error(f"--data {data}: no such folder (make one with scripts/prepare_data.py, or use --data lfw)")
    from denoising.faces import FaceDataError, load_prepared

    try:
        faces = load_prepared(path)
    except (FaceDataError, OSError, ValueError) as exc:
        parser.error(f"--data {data}: {exc}")
    summary = {"data": str(path)}
    meta = path / "meta.json"
    if meta.is_file() and meta.stat().st_size < 20_000:
        try:
            summary["cache_meta"] = json.loads(meta.read_text())
        except json.JSONDecodeError:
            pass
    return faces, summary


class Progress:
    """tqdm bar per run: loss and time left (an upper bound: early stopping may end sooner)."""

    def __init__(self):
        self.bar = None

    def __call__(self, event: dict) -> None:
        from tqdm import tqdm

        if event["event"] == "start":
            total = max(0, event["max_epochs"] - event["start_epoch"]) * event["batches"]
            self.bar = tqdm(total=total, desc=event["name"], unit="batch", dynamic_ncols=True)
        elif event["event"] == "batch":
            self.bar.update(1)
            if event["batch"] % 10 == 0 or event["batch"] == event["batches"]:
                self.bar.set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.4f}")
        elif event["event"] == "epoch":
            self.bar.write(f"{event['name']} epoch {event['epoch']}: loss {event['train_loss']:.5f}  "
                           f"val MAE {event['val_mae']:.5f}  val PSNR {event['val_psnr']:.2f} dB  "
                           f"{event['images_per_s']:.0f} img/s  (best epoch {event['best_epoch']})")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("epochs", "patience", "lr_patience", "batch_size", "limit", "val_limit", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if not 0 <= args.min_improvement < 1:
        parser.error(f"--min-improvement is a fraction in [0, 1), got {args.min_improvement}")
    if args.data != "lfw" and not Path(args.data).is_dir():  # checked before the slow torch import
        parser.error(f"--data {args.data}: no such folder (make one with scripts/prepare_data.py, or use --data lfw)")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import torch

    from denoising.models.checkpoint import CheckpointError
    from denoising.noise import PRESETS
    from denoising.training import TrainConfig, TrainingError, TrainingSetupError, train

    if args.preset not in PRESETS:
        parser.error(f"--preset {args.preset}: unknown (choose from {', '.join(sorted(PRESETS))})")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU here")
    faces, summary = load_faces(args.data, parser)
    archs = ARCHS if args.arch == "all" else (args.arch,)
    kinds = NOISE_KINDS if args.noise == "all" else (args.noise,)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    if device == "cpu":
        torch.set_num_threads(args.threads or torch.get_num_threads())
    where = torch.cuda.get_device_name(0) if device == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"device: {device} ({where}); training {len(archs) * len(kinds)} model(s) into {args.out}", flush=True)

    failures, start = [], time.perf_counter()
    for arch in archs:
        for kind in kinds:
            spec = PRESETS[args.preset][kind]
            config = TrainConfig(max_epochs=args.epochs, patience=args.patience, min_improvement=args.min_improvement,
                                 lr_patience=args.lr_patience,
                                 batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                 weights_dtype=args.weights_dtype, limit=args.limit, val_limit=args.val_limit,
                                 num_threads=args.threads)
            resume = args.resume and (args.out / "resume" / f"{arch}-{kind}" / "state.json").is_file()
            if args.resume and not resume:
                print(f"{arch}-{kind}: no resume state in {args.out / 'resume'}; training from scratch", flush=True)
            progress = Progress()
            t0 = time.perf_counter()
            try:
                result = train(arch, spec, faces, config, device=device, progress=progress, resume=resume,
                               out_dir=args.out, data_summary=summary)
            except KeyboardInterrupt:
                progress.close()
                print(f"\ninterrupted: finished epochs are saved; continue with the same command plus --resume",
                      file=sys.stderr)
                return 130
            except (TrainingSetupError, CheckpointError) as exc:  # bad input: stop before anything else runs
                progress.close()
                print(f"error: {exc}", file=sys.stderr)
                return 2
            except TrainingError as exc:  # diverged: its best weights are kept; go on with the other runs
                progress.close()
                print(f"error: {exc}", file=sys.stderr)
                failures.append(f"{arch}-{kind}")
                continue
            progress.close()
            best = next((h for h in result.history if h["epoch"] == result.best_epoch), None)
            scores = f"val MAE {best['val_mae']:.5f}, val PSNR {best['val_psnr']:.2f} dB" if best else "no new epochs"
            print(f"{arch}-{kind}: best epoch {result.best_epoch} of {result.epochs} run ({result.stopped}); "
                  f"{scores}; {(time.perf_counter() - t0) / 60:.1f} min -> {result.checkpoint}", flush=True)
    total = (time.perf_counter() - start) / 60
    done = len(archs) * len(kinds) - len(failures)
    print(f"done: {done} model(s) trained in {total:.1f} min on {device}"
          + (f"; failed: {', '.join(failures)}" if failures else ""), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
