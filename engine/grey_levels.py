"""Grey levels the models' flat-grey channel speaks in (engine/flat_grey.py), in plain Python.

Training loads this file by path (terrain/engine_parts.py): the GPU training machine has no GDAL, which the
engine package imports, and training must feed the very levels the engine feeds.
"""
import math

# The flat-grey channel's "unknown": far below any grey level in the model's input range (−1…1), it
# switches the regional-tilt branch's plane off (training/networks.py, RegionalTiltGenerator).
UNKNOWN_FLAT_LEVEL = -10.0


def hillshade_flat_grey(sun_elevation_deg):
    """The grey level `gdaldem hillshade` gives flat ground under a sun that high (1 + 254·cos i, cos i = sin el)."""
    return 1.0 + 254.0 * math.sin(math.radians(sun_elevation_deg))

# The sun-elevation channel (models whose card sets sun_elevation_input): the sun's elevation above the
# horizon as a constant level, 0–90° → −1…1; its "unknown" is far below, like the flat grey level's.
UNKNOWN_SUN_LEVEL = -10.0


def sun_elevation_level(sun_elevation_deg):
    """The sun-elevation channel's level for a sun that high (degrees above the horizon)."""
    return sun_elevation_deg / 45.0 - 1.0
