"""The engine's plain-numpy modules, loaded by path so that training and the engine share one definition.

Importing the engine package needs GDAL, which the GPU training machine lacks; these files import nothing
from it. Training must pad windows exactly as the engine does (tiling.py) and feed the flat-grey channel
the levels the engine feeds (grey_levels.py).
"""
import importlib.util
import os

_ENGINE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_engine_{name}", os.path.join(_ENGINE_DIR, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiling = _load("tiling")
grey_levels = _load("grey_levels")
