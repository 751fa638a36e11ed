"""Argument types shared by the command-line scripts in ``scripts/``."""

import argparse


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1, with a message a user can act on."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value
