"""What the command-line scripts in ``scripts/`` share: argument types, a progress bar, a clean stop on SIGTERM."""

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1, with a message a user can act on."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def comma_list(text: str) -> list[str]:
    """argparse type: ``"a, b,c"`` -> ``["a", "b", "c"]`` (empty parts dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def make_parent(path: str | Path) -> str:
    """Create the missing folders above the file ``path``, as the scripts' folder outputs are created.

    Returns what a success line adds: ``"made the folder <parent>"`` when it was missing, else ``""``.
    A file in the folder's place raises :class:`OSError` (the scripts print it as one line).
    """
    parent = Path(path).parent
    if parent.is_dir():
        return ""
    parent.mkdir(parents=True, exist_ok=True)
    return f"made the folder {parent}"


def progress_bar(desc: str, quiet: bool = False) -> Callable[[int], AbstractContextManager[Callable[[int, str], None]]]:
    """What ``run_evaluation`` / ``run_sweep`` take: ``bar(total)`` gives ``progress(n_done, description)``.

    The bar is tqdm's, on stderr, counting face-method evaluations; ``quiet`` hides it.
    """

    @contextlib.contextmanager
    def bar(total: int) -> Iterator[Callable[[int, str], None]]:
        from tqdm import tqdm

        with tqdm(total=total, unit="face", desc=desc, file=sys.stderr, dynamic_ncols=True, disable=quiet) as shown:
            def progress(n: int, description: str) -> None:
                shown.set_postfix_str(description, refresh=False)
                shown.update(n)

            yield progress

    return bar


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, ``kill`` (SIGTERM) stops like Ctrl-C, so worker processes are stopped and nothing half-written."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
