"""Ground size of a raster's pixels in metres, from its CRS: projected units, or angles on the CRS's
own ellipsoid (Earth, Mars, Moon… whatever body the CRS names)."""
import math
from dataclasses import dataclass

from osgeo import osr

from .errors import EngineError

osr.UseExceptions()

ASSIGN_CRS_HINT = ("Give the file a CRS first, e.g. `gdal_edit.py -a_srs EPSG:32611 image.tif` or QGIS's "
                   "Raster ▸ Projections ▸ Assign Projection (it writes the CRS into the file, which is "
                   "what the engine reads).")


@dataclass(frozen=True)
class GroundPixel:
    dx_m: float          # ground length of one column step (along a row)
    dy_m: float          # ground length of one row step (along a column)
    note: str            # how it was found, for the log and the output's metadata

    @property
    def size_m(self):
        """One length for non-square pixels: the geometric mean, the side of a square of the same area.
        A network sees square pixels, so its pixel-unit heights scale with that side."""
        return math.sqrt(self.dx_m * self.dy_m)


def _steps(transform):
    """Map-unit vectors of one column step and one row step (rotated geotransforms included)."""
    return (transform[1], transform[4]), (transform[2], transform[5])


def _geotransform(ds, what):
    transform = ds.GetGeoTransform(can_return_null=True)
    if transform is None:
        raise EngineError(f"{what} has no geotransform, so its pixel size on the ground is unknown. "
                          + ASSIGN_CRS_HINT)
    return transform


def spatial_ref(ds, what):
    """The dataset's CRS, or a clear error asking for one."""
    wkt = ds.GetProjection()
    if not wkt:
        raise EngineError(f"{what} has no CRS, so its pixel size on the ground is unknown. " + ASSIGN_CRS_HINT)
    srs = osr.SpatialReference(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)  # geotransforms are x = east, y = north
    return srs


def _linear(srs, transform):
    """Projected and local (engineering) CRSs: the geotransform is in the CRS's linear unit."""
    metres = srs.GetLinearUnits()
    (cx, cy), (rx, ry) = _steps(transform)
    kind = "projected" if srs.IsProjected() else "local"
    return GroundPixel(math.hypot(cx, cy) * metres, math.hypot(rx, ry) * metres,
                       f"{kind} CRS units ({srs.GetLinearUnitsName()}, {metres:g} m each)")


def _ellipsoid_radii(srs, latitude):
    """Meridian and prime-vertical radii of curvature (m) at a latitude (radians)."""
    a, b = srs.GetSemiMajor(), srs.GetSemiMinor()
    e2 = 1.0 - (b / a) ** 2
    w = math.sqrt(1.0 - e2 * math.sin(latitude) ** 2)
    return a * (1.0 - e2) / w ** 3, a / w


def _geographic(srs, transform, row):
    """Pixel size at the latitude of a (fractional) pixel row, at the raster's first column."""
    radians = srs.GetAngularUnits()
    latitude = (transform[3] + transform[5] * row) * radians
    if abs(latitude) > math.pi / 2:
        raise EngineError(f"The raster's latitude {math.degrees(latitude):g}° is outside ±90°: its "
                          "geotransform does not fit its geographic CRS.")
    meridian, prime = _ellipsoid_radii(srs, latitude)
    east, north = prime * math.cos(latitude) * radians, meridian * radians  # metres per angle unit
    (cx, cy), (rx, ry) = _steps(transform)
    body = srs.GetAttrValue("ELLIPSOID") or srs.GetAttrValue("SPHEROID") or "its ellipsoid"
    return GroundPixel(math.hypot(cx * east, cy * north), math.hypot(rx * east, ry * north),
                       f"degrees on {body} (a = {srs.GetSemiMajor():.0f} m) at latitude "
                       f"{math.degrees(latitude):.3f}°")


def ground_pixel(ds, what="The input", row=None):
    """Ground pixel size at a pixel row (default: the raster's centre row)."""
    srs = spatial_ref(ds, what)
    transform = _geotransform(ds, what)
    if srs.IsProjected() or srs.IsLocal():
        return _linear(srs, transform)
    if srs.IsGeographic():
        return _geographic(srs, transform, ds.RasterYSize / 2.0 if row is None else row)
    raise EngineError(f"{what}'s CRS is neither projected, local nor geographic, so its pixel size on the ground "
                      "is unknown. " + ASSIGN_CRS_HINT)


def spread_warning(ds, what="The input", tolerance=0.05):
    """A warning when the ground pixel size changes by more than `tolerance` between the top, centre and
    bottom rows (geographic rasters spanning many degrees of latitude), else None."""
    sizes = [ground_pixel(ds, what, row).size_m for row in (0.5, ds.RasterYSize / 2.0, ds.RasterYSize - 0.5)]
    centre = sizes[1]
    if centre > 0 and max(abs(size - centre) for size in sizes) <= tolerance * centre:
        return None
    return (f"The ground pixel size changes across the raster ({min(sizes):.4g}–{max(sizes):.4g} m between "
            f"its rows): heights use the {centre:.4g} m of its centre row, so they are too high where the "
            "pixels are smaller. Cut the raster into bands of latitude, or reproject it, for even heights.")
