"""What a model's output means, and how validation turns it into metres — the one place that knows.

Two kinds of model card:

* ``height_units=pixel`` (scale-free models): the network predicts height divided by the ground pixel
  size, offset arbitrary. The engine runs with HEIGHTS=pixel_size and writes metres (relief above the
  lowest point), from the pixel size of the rendered raster's CRS (scenes.write_geotiff's local metres).
* no ``height_units`` (legacy models): the engine's default 0–39,586 stretch of the output range, taken
  as metres at the card's ``training_gsd_m``; shading fixes slopes, so relief scales with the pixel size
  and metres are output × pixel size / training GSD (what a user gets by setting ELEVATION_MAX to
  39586 × pixel size / training GSD).

"""
import math

PIXEL_UNITS = "pixel"


def height_units(card):
    """'pixel' or 'legacy'; any other declared unit is an error, not a silent guess."""
    units = card.extra.get("height_units")
    if units is None:
        return "legacy"
    if units != PIXEL_UNITS:
        raise ValueError(f"model card of {card.path}: height_units '{units}' is not understood "
                         f"(validation knows '{PIXEL_UNITS}' and cards without the key)")
    return PIXEL_UNITS


def engine_options(card, sun_azimuth, threads=None, graph_optimization=None, scales="multi", flat_grey=None,
                   sun_elevation=None, photoclinometry=True):
    """EstimateOptions for one validation run of this model on CPU, lit from `sun_azimuth`, at the
    engine's default scales unless told otherwise; `flat_grey` and `sun_elevation`: flat ground's grey level
    and the sun's elevation where the image is a `gdaldem hillshade` render of known sun (models that do not
    take them ignore them; with both, the engine refines against the render unless `photoclinometry` is False)."""
    from dtm_estimator.engine import EstimateOptions
    options = EstimateOptions(card.path, sun_azimuth=sun_azimuth, device="cpu", threads=threads,
                              graph_optimization=graph_optimization, scales=scales, flat_grey=flat_grey,
                              sun_elevation=sun_elevation, photoclinometry=photoclinometry)
    if height_units(card) == PIXEL_UNITS:
        options.heights = "pixel_size"  # metres out
    return options


def to_metres(pred, card, dx, dy):
    """The engine's output (run with `engine_options`) as metres, for a raster of dx × dy m pixels."""
    if height_units(card) == PIXEL_UNITS:
        return pred  # already metres (HEIGHTS=pixel_size)
    return pred * (math.sqrt(dx * dy) / card.training_gsd_m)
