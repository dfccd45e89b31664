"""Measure a model under each onnxruntime graph optimisation level and record the fastest in its card.

    python -m training.tune_runtime models/mrfed.onnx [--repeats 15] [--threads 0] [--dry-run]

The levels are timed round-robin on one input of the card's size (so drift on a busy machine hits
all of them alike) and must give the same output (max abs difference ≤ 1e-4 of the output range)
before one may be chosen. A level other than "all" (onnxruntime's default) is written only when it
beats "all" by more than MARGIN, so timing noise never rewrites a model file.
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort

# The plugin's own engine (importable as `engine` from the repository root): the levels are timed on
# sessions opened exactly as estimate_dtm opens them, and the card key is the one it reads.
from engine.model_card import GRAPH_OPTIMIZATION_KEY as KEY
from engine.flat_grey import input_channels
from engine.runtime import open_model

LEVELS = ("basic", "extended", "all")
MARGIN = 0.10
TOLERANCE = 1e-4


def measure(path, repeats, threads):
    """Median seconds per level and the largest output difference from the 'basic' level."""
    by_level = {level: open_model(path, "cpu", threads or None, level)[0] for level in LEVELS}
    card = by_level["all"].card
    low, high = card.input_range
    image = np.random.default_rng(0).uniform(low, high, (1, input_channels(card), card.input_size, card.input_size))
    image = image.astype(np.float32)
    outputs = {level: model.run(image) for level, model in by_level.items()}
    out_low, out_high = card.output_range
    difference = max(float(np.abs(o - outputs["basic"]).max()) for o in outputs.values()) / (out_high - out_low)
    times = {level: [] for level in by_level}
    for _ in range(repeats):
        for level, model in by_level.items():
            start = time.perf_counter()
            model.run(image)
            times[level].append(time.perf_counter() - start)
    return {level: statistics.median(t) for level, t in times.items()}, difference


def choose(medians, difference):
    if difference > TOLERANCE:
        return "all"
    fastest = min(medians, key=medians.get)
    return fastest if medians[fastest] < (1 - MARGIN) * medians["all"] else "all"


def write_hint(path, level, note):
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    props[KEY] = level
    props[KEY + "_measured"] = note
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: onnxruntime's default)")
    parser.add_argument("--dry-run", action="store_true", help="measure and print, do not write the file")
    args = parser.parse_args()
    medians, difference = measure(args.model, args.repeats, args.threads)
    level = choose(medians, difference)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
               platform.processor() or "?")
    timings = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in medians.items())
    note = (f"{timings} per {os.path.basename(args.model)} run (median of {args.repeats}, CPU provider, "
            f"{cpu}, {os.cpu_count()} cores, onnxruntime {ort.__version__}); outputs differ by at most "
            f"{difference:.1e} of the output range")
    print(f"{args.model}: {note}\nchosen: {level}")
    if not args.dry_run:
        write_hint(args.model, level, note)


if __name__ == "__main__":
    main()
