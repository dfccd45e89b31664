"""The grey level of flat ground: a second model input that lets a model read a window's regional tilt.

A window tilted towards the sun is brighter as a whole than flat ground would be, away from it darker. A
network that normalises its features per window cannot see that, and one that can still needs to know how
bright flat ground is, which depends on the sun's elevation and the photometry. Models whose card sets
`flat_grey_input` take it as a constant second channel beside the image (training/networks.py,
RegionalTiltGenerator). The user gives it in the raster's own values (`gdaldem hillshade` renders flat ground
at 1 + 254·sin(sun elevation)); without it the channel holds UNKNOWN_FLAT_LEVEL, and the model draws no
plane from brightness: it runs as its backbone, leaving the tilt to the image's texture as other models do.
"""
import dataclasses

import numpy as np

from .errors import EngineError
from .grey_levels import UNKNOWN_FLAT_LEVEL, hillshade_flat_grey  # noqa: F401 (re-exported)

FLAT_GREY_KEY = "flat_grey_input"


def takes_flat_grey(card):
    return card.extra.get(FLAT_GREY_KEY, "").strip().lower() == "true"


def input_channels(card):
    """The model's input channels: the image, and flat ground's grey level where the card says it takes it."""
    return 2 if takes_flat_grey(card) else 1


def model_input(card, batch, level):
    """A batch of images [N, 1, H, W] as the model takes it: for a model that takes flat ground's grey level,
    with a constant channel at `level` (in the model's input range) beside each image; else as it is."""
    if not takes_flat_grey(card):
        return batch
    if level is None:
        raise EngineError(f"{card.summary()} takes flat ground's grey level: give one (UNKNOWN_FLAT_LEVEL if unknown).")
    return np.concatenate([batch, np.full_like(batch, level)], axis=1)


def resolve_flat_grey(card, options, log):
    """options with flat_grey as the model will use it: the given level, or None (unknown, or not taken)."""
    given = options.flat_grey
    if given is not None and not np.isfinite(given):
        raise EngineError("FLAT_GREY must be a finite grey level in the raster's own values.")
    if not takes_flat_grey(card):
        if given is not None:
            log(f"FLAT_GREY {given:g} ignored: {card.summary()} does not take the grey level of flat ground.")
        return dataclasses.replace(options, flat_grey=None)
    if given is None:
        log(f"{card.summary()} can read the regional tilt from brightness against flat ground's grey level; none "
            "was given (FLAT_GREY), so it draws no plane from brightness and runs as its backbone.")
        return options
    log(f"Flat ground's grey level: {given:g} (FLAT_GREY); the regional tilt is read from brightness against it.")
    return options


def flat_level(card, source, flat_grey):
    """flat_grey in the model's input range, as the image's pixels are mapped (UNKNOWN_FLAT_LEVEL when not
    given); None for a model without the input."""
    if not takes_flat_grey(card):
        return None
    return UNKNOWN_FLAT_LEVEL if flat_grey is None else source.to_input_range(flat_grey)
