"""Print speed figures: training throughput, evaluation wall time and single-face CPU latency per method.

(a) Training throughput (images/s) of each learned recipe on the chosen device: a few timed
    optimisation steps (the real training step of denoising.training) on random 28x28 batches.
(b) Evaluation wall time per method on N faces (one batch call, as scripts/evaluate.py makes it).
(c) Single-face CPU latency per method: median wall time of repeated one-face calls.
(d) Single-face latency of the fully convolutional learned models (those that take any image size;
    not the post's autoencoder, built for one size) at --latency-sizes (default 28, 64 and 256 px),
    on the CPU and, when the chosen device is CUDA, on the GPU too: numpy face in, denoised numpy
    face out, so a GPU figure includes the copies to and from it. Each row names its device.

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
import tempfile
import time
from pathlib import Path

from denoising.catalogue import ARCHS, DEFAULT_PRESET, NOISE_KINDS
from denoising.cli import comma_list, positive_int
from denoising.registry import DEFAULT_CHECKPOINT_DIR

#: Face sides (px) of the latency section (d): the post's 28 px faces, 64 px faces, a Noise lab upload.
LATENCY_SIZES = (28, 64, 256)


class BenchmarkSetupError(ValueError):
    """A flag names something this machine does not have (device, data, method)."""


def sizes_list(text: str) -> tuple[int, ...]:
    """argparse type: ``"28,64,256"`` -> ``(28, 64, 256)``, each a whole number >= 1."""
    try:
        sizes = tuple(positive_int(part) for part in comma_list(text))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not sizes:
        raise argparse.ArgumentTypeError("expected at least one size, e.g. 28,64,256")
    return sizes


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
    parser.add_argument("--noise", choices=NOISE_KINDS, default="gaussian",
                        help=f"noise kind of the inputs, from the '{DEFAULT_PRESET}' preset (default: gaussian)")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINT_DIR,
                        help="checkpoint folder for the learned methods (default: the shipped checkpoints/)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated methods for (b), (c) and (d) (default: all in the registry)")
    parser.add_argument("--skip-train", action="store_true", help="leave out the training throughput (a)")
    parser.add_argument("--latency-sizes", type=sizes_list, default=LATENCY_SIZES, metavar="N[,N...]",
                        help="face sides in pixels for the fully convolutional models' latency (d) "
                             f"(default: {','.join(map(str, LATENCY_SIZES))})")
    parser.add_argument("--skip-latency-sizes", action="store_true",
                        help="leave out the latency at several face sizes (d)")
    return parser


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pick_device(choice: str):
    """The torch device for (a); ``cuda`` without a GPU is a setup error."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise BenchmarkSetupError("--device cuda, but torch sees no GPU")
    return torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")


def noisy_test_faces(args):
    """(noisy faces, their NoiseSpec, where they came from): the first ``--faces`` test faces by image id."""
    from denoising.faces import FaceDataError, load_lfw_faces, load_prepared
    from denoising.noise import PRESETS, noisy_copies

    try:
        faces = load_prepared(args.data).subset("test") if args.data else load_lfw_faces(args.size)
    except FaceDataError as exc:
        raise BenchmarkSetupError(str(exc)) from None
    order = faces.table["image_id"].astype(str).argsort(kind="stable").to_numpy()
    clean = faces.images[order][: args.faces]
    ids = faces.table["image_id"].astype(str).to_numpy()[order][: args.faces]
    spec = PRESETS[DEFAULT_PRESET][args.noise]
    noisy, _ = noisy_copies(clean, ids, spec, base_seed=0)
    source = f"prepared cache {args.data}" if args.data else "scikit-image LFW"
    return noisy, spec, source


def untrained_checkpoints(folder: Path, size: int, noise_kind: str) -> Path:
    """Freshly initialised models of every recipe saved as checkpoints (same cost as trained ones)."""
    from denoising.models.checkpoint import save
    from denoising.training import TrainConfig, build_models

    for arch in ARCHS:
        save(build_models(arch, size, TrainConfig())[0], folder, arch, noise_kind)
    return folder


def select_methods(args, size: int, scratch: Path) -> tuple[dict, bool]:
    """The registry's denoisers (``--methods`` picks some) and whether the learned ones are untrained stand-ins."""
    from denoising.registry import build_registry

    methods = build_registry(args.checkpoints)
    untrained = not any(m.family == "learned" for m in methods.values())
    if untrained:
        methods = build_registry(untrained_checkpoints(scratch, size, args.noise))
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        missing = [m for m in wanted if m not in methods]
        if missing:
            raise BenchmarkSetupError(f"unknown method(s) {', '.join(missing)}; available: {', '.join(methods)}")
        methods = {n: m for n, m in methods.items() if n in wanted}
    return methods, untrained


def label(method, untrained: bool) -> str:
    return method.display_name + (" [untrained weights]" if untrained and method.family == "learned" else "")


def train_throughput(args, device) -> list[tuple[str, float, float]]:
    """(arch, images/s, ms/step) per recipe, on random batches, with the real optimisation step."""
    import torch

    from denoising.noise import PRESETS
    from denoising.training import TrainConfig, Trainer

    rows = []
    for arch in ARCHS:
        trainer = Trainer(arch, PRESETS[DEFAULT_PRESET]["gaussian"], TrainConfig(batch_size=args.batch_size),
                          args.size, device)
        gen = torch.Generator().manual_seed(0)
        shape = (args.batch_size, 3, args.size, args.size)
        x = torch.rand(shape, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
        y = torch.rand(shape, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
        # a range recipe is told each face's noise level, as in its real training
        told = (torch.full((args.batch_size,), trainer.spec.level, device=device),) if trainer.ranged else ()
        for _ in range(3):
            trainer.step(x, y, *told)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.train_steps):
            trainer.step(x, y, *told)  # .item() inside forces a sync per step, as in real training
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        rows.append((arch, args.train_steps * args.batch_size / wall, 1000 * wall / args.train_steps))
    return rows


def print_machine(device, noisy, spec, source: str) -> None:
    import torch

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({_cpu_model()})"
    print("## Machine\n")
    print(f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; torch {torch.__version__} "
          f"({torch.get_num_threads()} intra-op threads); Python {platform.python_version()}; {platform.platform()}")
    print(f"- Training device: {device} ({device_name})")
    print(f"- Faces: {source} at {noisy.shape[1]}x{noisy.shape[2]}, noise: {spec.label}\n")


def print_train_throughput(args, device) -> None:
    print(f"## (a) Training throughput on {device} (batch {args.batch_size}, {args.train_steps} timed steps)\n")
    print("| recipe | images/s | ms/step |\n|---|---|---|")
    for arch, rate, ms in train_throughput(args, device):
        print(f"| {arch} | {rate:,.0f} | {ms:.1f} |")
    print()


def print_evaluation_wall_time(methods: dict, untrained: bool, noisy, spec, slow_faces: int) -> None:
    print(f"## (b) Evaluation wall time per method (one batch call, CPU; slow methods on {slow_faces} faces)\n")
    print("| method | faces | wall s | ms/face |\n|---|---|---|---|")
    for denoiser in methods.values():
        if not denoiser.available(spec.kind):
            continue
        n = min(slow_faces, len(noisy)) if denoiser.slow else len(noisy)
        denoiser(noisy[:1], spec)  # warm-up: lazy model loading and imports are not the method's cost
        start = time.perf_counter()
        denoiser(noisy[:n], spec)
        wall = time.perf_counter() - start
        print(f"| {label(denoiser, untrained)} | {n} | {wall:.3f} | {1000 * wall / n:.2f} |")
    print()


def print_single_face_latency(methods: dict, untrained: bool, noisy, spec, repeats: int) -> None:
    import numpy as np

    print("## (c) Single-face latency on the CPU (median of repeats)\n")
    print("| method | repeats | median ms | min ms |\n|---|---|---|---|")
    one = np.ascontiguousarray(noisy[:1])
    for denoiser in methods.values():
        if not denoiser.available(spec.kind):
            continue
        times = []
        for _ in range(3 if denoiser.slow else repeats):
            start = time.perf_counter()
            denoiser(one, spec)
            times.append(time.perf_counter() - start)
        print(f"| {label(denoiser, untrained)} | {len(times)} | {1000 * statistics.median(times):.2f} | "
              f"{1000 * min(times):.2f} |")


def fully_convolutional_models(methods: dict, kind: str) -> dict:
    """Name -> network of each learned method with a ``kind`` checkpoint that takes any image size.

    A network whose constructor takes the image size (the post's autoencoder, with its fixed dense
    bottleneck) denoises that size only, so it is left out.
    """
    return {name: denoiser.model(kind) for name, denoiser in methods.items()
            if denoiser.family == "learned" and denoiser.available(kind) and denoiser.input_size(kind) is None}


def face_latency_ms(model, face, told: tuple, device, repeats: int) -> float:
    """Median ms of denoising one (H, W, 3) numpy face on ``device``: copies in and out included.

    ``told``: the model's extra forward arguments (:func:`denoising.models.learned.told_level`).
    """
    import numpy as np
    import torch

    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):  # three untimed calls first: kernel selection and caches
            start = time.perf_counter()
            x = torch.from_numpy(face).permute(2, 0, 1)[None].to(device)
            out = np.asarray(model(x, *told).permute(0, 2, 3, 1).cpu())  # .cpu() waits for the GPU
            if i >= 3:
                times.append(time.perf_counter() - start)
    if out.shape[1:] != face.shape:
        raise RuntimeError(f"a {face.shape[0]} px face came back as {out.shape[1]} px: not fully convolutional")
    return 1000 * statistics.median(times)


def print_size_latency(methods: dict, untrained: bool, spec, device, sizes: tuple[int, ...], repeats: int) -> None:
    import copy

    import numpy as np
    import torch

    models = fully_convolutional_models(methods, spec.kind)
    devices = [torch.device("cpu")] + ([device] if device.type == "cuda" else [])
    names = {d: torch.cuda.get_device_name(d) if d.type == "cuda" else _cpu_model() for d in devices}
    print(f"\n## (d) Single-face latency at several sizes, fully convolutional models (median of {repeats} repeats, "
          "ms; numpy face in and out)\n")
    if not models:
        print(f"No fully convolutional learned model has a {spec.kind} checkpoint.")
        return
    print("| method | device | " + " | ".join(f"{s} px" for s in sizes) + " |\n|---|---|" + "---|" * len(sizes))
    rng = np.random.default_rng(0)
    faces = {s: rng.random((s, s, 3), dtype=np.float32) for s in sizes}  # content does not change a conv's cost
    from denoising.models.learned import told_level

    for name, model in models.items():
        for dev in devices:
            on_device = copy.deepcopy(model).to(dev).eval()
            cells = [f"{face_latency_ms(on_device, faces[s], told_level(model, spec), dev, repeats):.2f}" for s in sizes]
            print(f"| {label(methods[name], untrained)} | {dev.type} ({names[dev]}) | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="benchmark-") as scratch:
        try:
            device = pick_device(args.device)
            noisy, spec, source = noisy_test_faces(args)
            methods, untrained = select_methods(args, int(noisy.shape[1]), Path(scratch))
        except BenchmarkSetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print_machine(device, noisy, spec, source)
        if not args.skip_train:
            print_train_throughput(args, device)
        print_evaluation_wall_time(methods, untrained, noisy, spec, args.slow_faces)
        print_single_face_latency(methods, untrained, noisy, spec, args.repeats)
        if not args.skip_latency_sizes:
            print_size_latency(methods, untrained, spec, device, args.latency_sizes, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
