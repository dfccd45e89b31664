"""Does the engine's multi-scale average shrink a model's height spread? Measured on training views.

    python -m training.scale_spread models/mrfed.onnx --corpus-cache runs/corpus.npz [--views 60]

Export scales a network so that the median over 60 training views of std(truth) / std(prediction) is
about 1 (training/export.py, spread_gain). Averaging three partly independent estimates
(engine/multiscale.py) could shrink their spread and bias HEIGHTS=pixel_size low. This prints the same
median for the single scale and for the ½×, 1×, 2× average, on the same views (the training sites,
seed 2024, 512²), each run through the engine's own window predictor. Measured 2026-11-30:
MRFED 2.1.0 1.0847 / 1.0864, Pix2PixCC 2.0.0 1.1816 / 1.1515, so the average keeps the spread and the
engine applies no correction to it.
"""
import argparse
import statistics

import numpy as np

from engine.dask_executor import TileHeights
from engine.pipeline import EstimateOptions, TilePredictor
from engine.flat_grey import flat_level
from engine.runtime import open_model
from training import data
from training.export import CALIBRATION_SEED as VIEW_SEED, CALIBRATION_VIEW_SIZE as VIEW_SIZE


def spread_ratios(path, dems, count, threads):
    """Median std(truth) / std(prediction) over `count` training views: (single scale, multi-scale)."""
    model, _ = open_model(path, "cpu", threads)
    unit = TileHeights(1.0, 0.0)
    level = flat_level(model.card, None, None)  # a flat-grey model runs as its backbone here (no grey level)
    predictors = [TilePredictor(model, EstimateOptions(path, scales=mode), unit, level) for mode in ("single", "multi")]
    images, targets, masks = data.heldout_views(dems, VIEW_SIZE, count, seed=VIEW_SEED)
    ratios = [[], []]
    for image, target, mask in zip(images, targets, masks):
        values, truth, valid = image[0].numpy(), target[0].numpy(), mask[0].numpy() > 0.5
        for predictor, found in zip(predictors, ratios):
            found.append(float(np.std(truth[valid]) / np.std(predictor.predict(values.copy())[valid])))
    return tuple(statistics.median(found) for found in ratios)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--corpus-cache", help="npz of the training sites (python -m terrain.corpus)")
    ap.add_argument("--views", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    single, multi = spread_ratios(args.model, data.load_dems("train", args.corpus_cache), args.views, args.threads)
    print(f"{args.model}: median std(truth)/std(prediction) over {args.views} training views "
          f"({VIEW_SIZE}², seed {VIEW_SEED}): {single:.4f} at one scale, {multi:.4f} for the ½×, 1×, 2× average")


if __name__ == "__main__":
    main()
