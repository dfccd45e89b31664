"""Small ONNX models built with the onnx helper API, standing in for trained generators in fast tests."""
import onnx
from onnx import TensorProto, helper, numpy_helper
import numpy as np

CARD = {
    "name": "Test identity", "version": "0.0.1", "architecture": "identity", "input_size": "1024",
    "input_multiple": "8", "input_normalisation": "8-bit v/127.5-1", "input_range": "-1,1",
    "output_range": "-1,1", "sun_azimuth_deg": "270", "training_gsd_m": "50", "license": "GPL-2.0-or-later",
}

# A model with pixel-unit heights: its output is height / ground pixel size (output_range is nominal).
PIXEL_CARD = {**CARD, "name": "Test pixel identity", "height_units": "pixel"}


def _model(nodes, inputs, outputs, initializers=(), card=CARD):
    graph = helper.make_graph(nodes, "fixture", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if card is not None:
        helper.set_model_props(model, dict(card))
    onnx.checker.check_model(model)
    return model


def _io(name, channels=1):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", channels, "H", "W"])


def identity(path, card=CARD, scale=1.0, bias=0.0):
    """elevation = scale * image + bias: every engine step can be checked exactly."""
    nodes = [helper.make_node("Mul", ["image", "scale"], ["scaled"]),
             helper.make_node("Add", ["scaled", "bias"], ["elevation"])]
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "scale"),
             numpy_helper.from_array(np.array(bias, np.float32), "bias")]
    onnx.save(_model(nodes, [_io("image")], [_io("elevation")], inits, card), path)
    return path


def relief_above_window_minimum(path, card=CARD, scale=1.0, bias=-1.0):
    """elevation = scale · (image − min(image)) + bias, min over the whole window: like JMARS's models,
    relief above each window's lowest point, which may leave output_range as the real networks do."""
    nodes = [helper.make_node("ReduceMin", ["image"], ["lowest"], axes=[2, 3], keepdims=1),
             helper.make_node("Sub", ["image", "lowest"], ["relief"]),
             helper.make_node("Mul", ["relief", "scale"], ["scaled"]),
             helper.make_node("Add", ["scaled", "bias"], ["elevation"])]
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "scale"),
             numpy_helper.from_array(np.array(bias, np.float32), "bias")]
    onnx.save(_model(nodes, [_io("image")], [_io("elevation")], inits, card), path)
    return path


def box_blur(path, card=CARD, size=9):
    """A size×size mean filter (zero-padded): its borders show whether padding and cropping line up."""
    kernel = np.full((1, 1, size, size), 1.0 / size ** 2, np.float32)
    node = helper.make_node("Conv", ["image", "kernel"], ["elevation"], pads=[size // 2] * 4)
    onnx.save(_model([node], [_io("image")], [_io("elevation")],
                     [numpy_helper.from_array(kernel, "kernel")], card), path)
    return path


def wrong_channels(path, channels=3):
    node = helper.make_node("Identity", ["image"], ["elevation"])
    onnx.save(_model([node], [_io("image", channels)], [_io("elevation", channels)]), path)
    return path


def wrong_rank(path):
    node = helper.make_node("Identity", ["image"], ["elevation"])
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["H", "W"]) for n in ("image", "elevation")]
    onnx.save(_model([node], [io[0]], [io[1]]), path)
    return path


def without_card(path):
    return identity(path, card=None)


def mean_removed(path, card=CARD):
    """elevation = image − its own mean: every window comes out with a different constant offset."""
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=1),
             helper.make_node("Sub", ["image", "mean"], ["elevation"])]
    onnx.save(_model(nodes, [_io("image")], [_io("elevation")], card=card), path)
    return path


FLAT_GREY_CARD = {**CARD, "name": "Test brightness above flat ground", "flat_grey_input": "true"}


def brightness_above_flat(path, card=FLAT_GREY_CARD):
    """Two input channels, the image and flat ground's grey level: elevation = image − flat − 1, so a Byte value
    v over a flat grey level f maps to exactly 4 (v − f) m on the tests' 0…1020 range."""
    nodes = [helper.make_node("Split", ["image", "halves"], ["grey", "flat"], axis=1),
             helper.make_node("Sub", ["grey", "flat"], ["above"]),
             helper.make_node("Sub", ["above", "one"], ["elevation"])]
    inits = [numpy_helper.from_array(np.array([1, 1], np.int64), "halves"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one")]
    onnx.save(_model(nodes, [_io("image", 2)], [_io("elevation")], inits, card), path)
    return path


SUN_ELEVATION_CARD = {**FLAT_GREY_CARD, "name": "Test brightness above flat ground by sun", "sun_elevation_input": "true"}


def brightness_above_flat_by_sun(path, card=SUN_ELEVATION_CARD):
    """Three input channels, the image, flat ground's grey level and the sun's elevation (level e/45° − 1):
    elevation = (image − flat)·(level + 2)/2 − 1, so a Byte value v over a flat grey level f maps to 4 (v − f) m
    on the tests' 0…1020 range under a 45° sun and to 3 (v − f) m under a 22.5° one."""
    nodes = [helper.make_node("Split", ["image", "thirds"], ["grey", "flat", "sun"], axis=1),
             helper.make_node("Sub", ["grey", "flat"], ["above"]),
             helper.make_node("Add", ["sun", "two"], ["factor"]),
             helper.make_node("Mul", ["above", "factor"], ["scaled"]),
             helper.make_node("Mul", ["scaled", "half"], ["halved"]),
             helper.make_node("Sub", ["halved", "one"], ["elevation"])]
    inits = [numpy_helper.from_array(np.array([1, 1, 1], np.int64), "thirds"),
             numpy_helper.from_array(np.array(2.0, np.float32), "two"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one")]
    onnx.save(_model(nodes, [_io("image", 3)], [_io("elevation")], inits, card), path)
    return path
