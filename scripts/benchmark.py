"""Print speed figures: training throughput, evaluation wall time and single-face CPU latency per method.

(a) Training throughput (images/s) of each learned recipe on the chosen device: a few timed
    optimisation steps (the real training step of denoising.training) on random 28x28 batches.
(b) Evaluation wall time per method on N faces (one batch call, as scripts/evaluate.py makes it).
(c) Single-face CPU latency per method: median wall time of repeated one-face calls.

Learned methods use the checkpoints in --checkpoints when present; otherwise freshly initialised
models of the default size (same cost, untrained weights; the table says so).
It prints markdown tables and the machine it ran on; it is a measurement, not a test.

Examples
--------
python scripts/benchmark.py
python scripts/benchmark.py --device cuda --train-steps 50 --faces 660 --data .cache/faces/<cache>
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from denoising.cli import positive_int  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Print training throughput, evaluation wall time and single-face "
                                                 "CPU latency per method, with the machine they were measured on.")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="device for the training-throughput figures (default: auto = CUDA when present)")
    parser.add_argument("--size", type=positive_int, default=28, help="face side in pixels (default: 28)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="training batch size (default: 64)")
    parser.add_argument("--train-steps", type=positive_int, default=10,
                        help="timed training steps per recipe, after 3 warm-up steps (default: 10)")
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared face cache whose test faces are used for (b) and (c) "
                             "(default: scikit-image's built-in LFW faces)")
    parser.add_argument("--faces", type=positive_int, default=100,
                        help="faces for the evaluation wall time (b) (default: 100)")
    parser.add_argument("--slow-faces", type=positive_int, default=4,
                        help="faces for slow methods (BM3D) in (b); their time is scaled per face (default: 4)")
    parser.add_argument("--repeats", type=positive_int, default=15,
                        help="repeats for the single-face latency (c) (default: 15; slow methods: 3)")
    parser.add_argument("--noise", default="gaussian",
                        help="noise kind of the inputs, from the 'post' preset (default: gaussian)")
    parser.add_argument("--checkpoints", type=Path, default=REPO / "checkpoints",
                        help="checkpoint folder for the learned methods (default: checkpoints/)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated methods for (b) and (c) (default: all in the registry)")
    parser.add_argument("--skip-train", action="store_true", help="leave out the training throughput (a)")
    return parser


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fresh_learned(size: int) -> dict:
    """Registry-like entries for learned recipes without checkpoints: untrained models, same cost."""
    import numpy as np
    import torch

    from denoising.models import LEARNED
    from denoising.registry import Method
    from denoising.training import TrainConfig, build_models

    methods = {}
    for arch, (display, description) in LEARNED.items():
        model = build_models(arch, size, TrainConfig())[0].eval()

        def denoise(images, kind, model=model):
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2)
                return model(x).clamp(0, 1).permute(0, 2, 3, 1).numpy()

        methods[arch] = Method(arch, display + " [untrained weights]", "learned", False, description, denoise)
    return methods


def train_throughput(args, device) -> list[tuple[str, float, float]]:
    """(arch, images/s, ms/step) per recipe, on random batches."""
    import torch

    from denoising import training
    from denoising.noise import PRESETS

    rows = []
    for arch in training.ARCHS:
        config = training.TrainConfig(batch_size=args.batch_size)
        # the real optimisation step (both networks and optimizers for pix2pix)
        trainer = training.Trainer(arch, PRESETS["post"]["gaussian"], config, args.size, device)
        gen = torch.Generator().manual_seed(0)
        shape = (args.batch_size, 3, args.size, args.size)
        x = torch.rand(shape, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
        y = torch.rand(shape, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
        for _ in range(3):
            trainer.step(x, y)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.train_steps):
            trainer.step(x, y)  # .item() inside forces a sync per step, as in real training
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        rows.append((arch, args.train_steps * args.batch_size / wall, 1000 * wall / args.train_steps))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    import numpy as np
    import torch

    from denoising.faces import FaceDataError, load_lfw_faces, load_prepared
    from denoising.noise import PRESETS, noisy_copies
    from denoising.registry import build_registry

    if args.noise not in PRESETS["post"]:
        print(f"error: unknown noise kind {args.noise!r}; choose from {', '.join(PRESETS['post'])}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no GPU", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    try:
        faces = load_prepared(args.data).subset("test") if args.data else load_lfw_faces(args.size)
    except FaceDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    order = faces.table["image_id"].astype(str).argsort(kind="stable").to_numpy()
    clean = faces.images[order][: args.faces]
    ids = faces.table["image_id"].astype(str).to_numpy()[order][: args.faces]
    noisy, _ = noisy_copies(clean, ids, PRESETS["post"][args.noise], base_seed=0)

    methods = build_registry(args.checkpoints)
    if not any(m.family == "learned" for m in methods.values()):
        methods.update(_fresh_learned(int(clean.shape[1])))
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        missing = [m for m in wanted if m not in methods]
        if missing:
            print(f"error: unknown method(s) {', '.join(missing)}; available: {', '.join(methods)}", file=sys.stderr)
            return 2
        methods = {n: m for n, m in methods.items() if n in wanted}

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({_cpu_model()})"
    print("## Machine\n")
    print(f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; torch {torch.__version__} "
          f"({torch.get_num_threads()} intra-op threads); Python {platform.python_version()}; {platform.platform()}")
    print(f"- Training device: {device} ({device_name})")
    print(f"- Faces: {'prepared cache ' + str(args.data) if args.data else 'scikit-image LFW'} at "
          f"{clean.shape[1]}x{clean.shape[2]}, noise: {PRESETS['post'][args.noise].label}\n")

    if not args.skip_train:
        print(f"## (a) Training throughput on {device} (batch {args.batch_size}, {args.train_steps} timed steps)\n")
        print("| recipe | images/s | ms/step |\n|---|---|---|")
        for arch, rate, ms in train_throughput(args, device):
            print(f"| {arch} | {rate:,.0f} | {ms:.1f} |")
        print()

    print(f"## (b) Evaluation wall time per method (one batch call, CPU; slow methods on {args.slow_faces} faces)\n")
    print("| method | faces | wall s | ms/face |\n|---|---|---|---|")
    for name, method in methods.items():
        if not method.available(args.noise):
            continue
        n = min(args.slow_faces, len(noisy)) if method.slow else len(noisy)
        method(noisy[:1], args.noise)  # warm-up: lazy model loading and imports are not the method's cost
        start = time.perf_counter()
        method(noisy[:n], args.noise)
        wall = time.perf_counter() - start
        print(f"| {method.display_name} | {n} | {wall:.3f} | {1000 * wall / n:.2f} |")
    print()

    print("## (c) Single-face latency on the CPU (median of repeats)\n")
    print("| method | repeats | median ms | min ms |\n|---|---|---|---|")
    one = np.ascontiguousarray(noisy[:1])
    for name, method in methods.items():
        if not method.available(args.noise):
            continue
        repeats = 3 if method.slow else args.repeats
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            method(one, args.noise)
            times.append(time.perf_counter() - start)
        print(f"| {method.display_name} | {repeats} | {1000 * statistics.median(times):.2f} | "
              f"{1000 * min(times):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
