"""Processing provider and algorithm: a thin QGIS adapter around the QGIS-free engine."""
