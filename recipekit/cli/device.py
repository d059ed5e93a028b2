"""`recipekit device-check BUNDLE`: run a Jetson bundle's own check program on this machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from recipekit.cli.common import parse
from recipekit.core.errors import UsageError


def invoke(command: str, argv: list[str]) -> int:
    from recipekit.targets.trt.devicecheck import device_check

    parser = argparse.ArgumentParser(
        prog="recipekit device-check",
        description="Build the bundle's engine (trt) or load its ONNX (ort), run the golden inputs, compare with the "
        "recipe's tolerances.",
    )
    parser.add_argument("bundle", help="a trt-jetson bundle folder (build/<name>/trt-jetson)")
    parser.add_argument(
        "--backend",
        choices=("trt", "ort"),
        default="trt",
        help="trt on the device; ort runs the same checks with ONNX Runtime",
    )
    args = parse(parser, argv)
    if not (Path(args.bundle) / "check.py").is_file():
        raise UsageError(f"{args.bundle}: not a trt-jetson bundle (no check.py)")
    return device_check(Path(args.bundle), args.backend)
