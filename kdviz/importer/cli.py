"""``kdviz import-model``: a ``.safetensors`` file as a finished run, for a zoo model or a JSON spec.

    kdviz import-model weights.safetensors --model lenet5 --dataset digits
    kdviz import-model weights.safetensors --model mlp --options '{"hidden": [64, 64]}' --dataset mnist --data-root ~/mnist
    kdviz import-model weights.safetensors --spec spec.json --dataset image-folder --data-root ~/shapes

``kdviz.cli`` adds the subcommand with ``add_parser(subparsers)`` and runs ``command(args)``; a bad
file, a mismatch or a bad option raises ``ValueError``, which the CLI prints as one line (exit 2).
"""
from __future__ import annotations

import argparse
import json

NAME = "import-model"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``import-model`` to the ``kdviz`` command's subparsers."""
    parser = subparsers.add_parser(
        NAME, help="import .safetensors weights as a finished run (a zoo model or a JSON spec)",
        description="Check a .safetensors file's tensors against a model, evaluate it on a dataset and write a "
                    "finished run folder that every page offers as a teacher or a model to prune and quantize.")
    parser.add_argument("weights", help="the .safetensors file (pickles are refused)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a kdviz model name (lenet5, mlp, cnn, resnet, ...)")
    which.add_argument("--spec", help="a JSON spec file: a layer list, e.g. [{\"conv\": 16}, {\"pool\": 2}, {\"linear\": 64}]")
    parser.add_argument("--options", default="{}", help="the model's options as JSON, e.g. '{\"hidden\": [64, 64]}'")
    parser.add_argument("--dataset", default="digits", help="the dataset to evaluate on (default: digits)")
    parser.add_argument("--data-root", default=None, help="its files: a folder, CSV file or JSON description")
    parser.add_argument("--name", default=None, help="the run's name (default: imported-<file stem>)")
    parser.add_argument("--runs-root", default=None, help="default: $KDVIZ_RUNS, else runs/ in the checkout")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback on errors")
    return parser


def command(args: argparse.Namespace) -> int:
    """Run the import; prints the run folder and its test accuracy. Returns the exit status."""
    from .weights import import_weights, spec_options

    if args.spec:
        model, options = "spec", spec_options(args.spec)
    else:
        model = args.model
        try:
            options = json.loads(args.options)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--options is not valid JSON: {exc.msg}") from None
        if not isinstance(options, dict):
            raise ValueError(f"--options must be a JSON object such as '{{\"hidden\": [64]}}', got {args.options!r}")
    run = import_weights(args.weights, model, options, dataset=args.dataset, data_root=args.data_root,
                         runs_root=args.runs_root, name=args.name)
    print(f"imported {run.tensors} tensors into {run.path}")
    print(f"test accuracy {run.test_acc:.2%} (loss {run.test_loss:.4f}) on {args.dataset}")
    return 0
