"""The grey level of flat ground: a second model input that lets a model read a window's regional tilt.

A window tilted towards the sun is brighter as a whole than flat ground would be, away from it darker. A
network that normalises its features per window cannot see that, and one that can still needs to know how
bright flat ground is, which depends on the sun's elevation and the photometry. Models whose card sets
`flat_grey_input` take it as a constant second channel beside the image (training/networks.py,
RegionalTiltGenerator). The user gives it in the raster's own values (`gdaldem hillshade` renders flat ground
at 1 + 254·sin(sun elevation)); without it the channel holds UNKNOWN_FLAT_LEVEL, and the model draws no
plane from brightness: it runs as its backbone, leaving the tilt to the image's texture as other models do.

The sun's elevation is a third such input, for models whose card sets `sun_elevation_input`: a window's
brightness against flat ground's gives its slope towards the sun only with the elevation (ΔI / I_flat ≈
cot(e)·g), and so does the image's contrast give the relief's amplitude. Orbital images' labels state it
(ISIS INCIDENCE_ANGLE: e = 90° − incidence). Unknown, the channel holds UNKNOWN_SUN_LEVEL and the model runs
as it does without it.
"""
import dataclasses

import numpy as np

from .errors import EngineError
from .grey_levels import (UNKNOWN_FLAT_LEVEL, UNKNOWN_SUN_LEVEL, hillshade_flat_grey,  # noqa: F401 (re-exported)
                          sun_elevation_level)

FLAT_GREY_KEY = "flat_grey_input"
SUN_ELEVATION_KEY = "sun_elevation_input"


def takes_flat_grey(card):
    return card.extra.get(FLAT_GREY_KEY, "").strip().lower() == "true"


def takes_sun_elevation(card):
    """Whether the model takes the sun's elevation (a third channel, after flat ground's grey level)."""
    return takes_flat_grey(card) and card.extra.get(SUN_ELEVATION_KEY, "").strip().lower() == "true"


def input_channels(card):
    """The model's input channels: the image, flat ground's grey level and the sun's elevation where the card
    says it takes them."""
    return 1 + takes_flat_grey(card) + takes_sun_elevation(card)


def model_input(card, batch, level, sun_level=None):
    """A batch of images [N, 1, H, W] as the model takes it: for a model that takes flat ground's grey level,
    with a constant channel at `level` (in the model's input range) beside each image, and for one that takes
    the sun's elevation, one more at `sun_level`; else as it is."""
    if not takes_flat_grey(card):
        return batch
    if level is None:
        raise EngineError(f"{card.summary()} takes flat ground's grey level: give one (UNKNOWN_FLAT_LEVEL if unknown).")
    channels = [batch, np.full_like(batch, level)]
    if takes_sun_elevation(card):
        if sun_level is None:
            raise EngineError(f"{card.summary()} takes the sun's elevation: give one (UNKNOWN_SUN_LEVEL if unknown).")
        channels.append(np.full_like(batch, sun_level))
    return np.concatenate(channels, axis=1)


def check_flat_grey(given):
    """The given grey level (None: unknown), or an error if it is not a number."""
    if given is not None and not np.isfinite(given):
        raise EngineError("FLAT_GREY must be a finite grey level in the raster's own values.")
    return given


def check_sun_elevation(given):
    """The given elevation (None: unknown), or an error outside 0–90°."""
    if given is not None and not (np.isfinite(given) and 0.0 < given < 90.0):
        raise EngineError(f"SUN_ELEVATION must be the sun's elevation above the horizon in degrees, between 0 and "
                          f"90 (exclusive); got {given:g}.")
    return given


def resolve_flat_grey(card, options, log):
    """options with flat_grey as the model will use it: the given level, or None (unknown, or not taken)."""
    given = check_flat_grey(options.flat_grey)
    if not takes_flat_grey(card):
        if given is not None:
            log(f"FLAT_GREY {given:g} is not a model input: {card.summary()} does not take the grey level of flat ground.")
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


def resolve_sun_elevation(card, options, log):
    """options with sun_elevation as the model will use it: the given elevation, or None (unknown, not taken,
    or of no use without flat ground's grey level)."""
    given = check_sun_elevation(options.sun_elevation)
    if given is None:
        return options
    if not takes_sun_elevation(card):
        log(f"SUN_ELEVATION {given:g}° is not a model input: {card.summary()} does not take the sun's elevation.")
        return dataclasses.replace(options, sun_elevation=None)
    if options.flat_grey is None:
        log(f"SUN_ELEVATION {given:g}° is not a model input here: {card.summary()} uses it with flat ground's grey level "
            "(FLAT_GREY), which was not given.")
        return dataclasses.replace(options, sun_elevation=None)
    log(f"Sun elevation {given:g}° (SUN_ELEVATION): the regional slope and the relief's amplitude are read with it.")
    return options


def sun_level(card, sun_elevation):
    """sun_elevation as the model's channel level (UNKNOWN_SUN_LEVEL when not given); None for a model
    without the input."""
    if not takes_sun_elevation(card):
        return None
    return UNKNOWN_SUN_LEVEL if sun_elevation is None else sun_elevation_level(sun_elevation)
