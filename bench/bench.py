"""Speed and memory of the engine against the bare network, on generated georeferenced rasters.

Every case runs in a fresh subprocess so its peak resident memory is its own.
Usage: python -m bench.bench [--models pix2pixcc mrfed] [--sizes 2048 4096 8192] [--threads 0 1 2]
       [--out bench/results]   (run from the repository root; writes results.json and results.md)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build", "plugins"))


def make_raster(path, size, seed=0):
    """A shaded random-relief image, Byte, in the Mars 2015 CRS, written in strips (any size)."""
    import numpy as np
    from osgeo import gdal
    sample = gdal.Open(os.path.join(ROOT, "sample_data", "mars_mola_shaded_relief.tif"))
    ds = gdal.GetDriverByName("GTiff").Create(path, size, size, 1, gdal.GDT_Byte, ["TILED=YES"])
    ds.SetProjection(sample.GetProjection())
    ds.SetGeoTransform((0.0, 0.001, 0.0, 0.0, 0.0, -0.001))
    rng = np.random.default_rng(seed)
    base = rng.random((64, 64))
    for y0 in range(0, size, 1024):
        rows = min(1024, size - y0)
        y, x = np.mgrid[y0:y0 + rows, 0:size]
        image = 128 + 60 * np.sin(x / 37.0) * np.cos(y / 53.0) + 30 * base[(y // 17) % 64, (x // 23) % 64]
        ds.GetRasterBand(1).WriteArray(np.clip(image, 0, 255).astype(np.uint8), 0, y0)
    ds = None
    return path


def case_bare(model_path, threads, repeats):
    import numpy as np
    from dtm_estimator.engine.runtime import open_model
    model, _ = open_model(model_path, "cpu", threads or None)
    batch = np.random.default_rng(0).uniform(-1, 1, (1, 1, 1024, 1024)).astype(np.float32)
    model.run(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.run(batch)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times)}


def case_variant(model_path, variant, repeats):
    """Bare network time for a precision/optimisation variant of the model (CPU, default threads)."""
    import numpy as np
    import onnxruntime as ort
    path, options = model_path, ort.SessionOptions()
    if variant == "int8-dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        path = tempfile.mktemp(suffix=".onnx")
        quantize_dynamic(model_path, path, weight_type=QuantType.QUInt8)
    else:
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, variant)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).uniform(-1, 1, (1, 1, 1024, 1024)).astype(np.float32)
    reference = session.run(None, {"image": batch})[0]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"image": batch})
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "output_mean": float(reference.mean())}


VARIANTS = ("ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL", "int8-dynamic")


def case_engine(model_path, raster, mode, threads, repeats):
    from dtm_estimator.engine import EstimateOptions, estimate_dtm
    options = EstimateOptions(model_path, device="cpu", large_raster=mode, threads=threads or None)
    out = tempfile.mktemp(suffix=".tif", dir=os.path.dirname(raster))
    if repeats > 1:  # warm-up for the 1024² comparison
        estimate_dtm(raster, out, options)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        report = estimate_dtm(raster, out, options)
        times.append(time.perf_counter() - start)
    os.remove(out)
    return {"seconds": statistics.median(times), "tiles": report.tiles}


def peak_rss_mib():
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across fork+exec)."""
    line = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def run_case(kind, **kwargs):
    """Run one case in a child process; return its result plus the child's peak RSS in MiB."""
    code = ("import json, sys; sys.path.insert(0, %r); from bench import bench; "
            "r = getattr(bench, 'case_' + %r)(**json.loads(sys.argv[1])); "
            "r['peak_rss_mib'] = bench.peak_rss_mib(); print(json.dumps(r))"
            % (ROOT, kind))
    out = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["pix2pixcc", "mrfed"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[2048, 4096, 8192])
    parser.add_argument("--threads", nargs="+", type=int, default=[0, 1, 2],
                        help="intra-op threads (0: onnxruntime's default); the size sweep runs at the first")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="dtm-bench-")
    rasters = {size: make_raster(os.path.join(scratch, f"r{size}.tif"), size) for size in [1024] + args.sizes}
    rows = []
    for name in args.models:
        model = name if name.endswith(".onnx") else os.path.join(ROOT, "models", f"{name}.onnx")
        for threads in args.threads:
            bare = run_case("bare", model_path=model, threads=threads, repeats=args.repeats)
            whole = run_case("engine", model_path=model, raster=rasters[1024], mode="tile", threads=threads,
                             repeats=args.repeats)
            row = {"model": name, "threads": threads or "default", "bare_1024_s": bare["seconds"],
                   "engine_1024_s": whole["seconds"], "ratio": whole["seconds"] / bare["seconds"]}
            sweep = threads == args.threads[0]  # sizes and modes once, at the first thread setting
            for mode in ("tile", "fit") if sweep else ():
                for size in args.sizes:
                    result = run_case("engine", model_path=model, raster=rasters[size], mode=mode,
                                      threads=threads, repeats=1)
                    row[f"{mode}_{size}"] = dict(result, mpix_per_s=size * size / 1e6 / result["seconds"])
            if sweep:
                row["variants"] = {v: run_case("variant", model_path=model, variant=v, repeats=args.repeats)
                                   for v in VARIANTS}
            rows.append(row)
            print(json.dumps(row), flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump({"machine": machine(), "rows": rows}, handle, indent=1)
    table = markdown(rows, args.sizes)
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write(f"Machine: {machine()}\n\n{table}\n")
    print(table)


def machine():
    import platform
    import onnxruntime
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    return f"{cpu}, {os.cpu_count()} cores, onnxruntime {onnxruntime.__version__}, {platform.platform()}"


def markdown(rows, sizes):
    head = ["model", "threads", "bare 1024² s", "engine 1024² s", "engine/bare"]
    for mode in ("tile", "fit"):
        head += [f"{mode} {s}² s (MP/s, peak MiB)" for s in sizes]
    head += [f"tile {sizes[-1]}²/{sizes[-2]}² time"] if len(sizes) > 1 else []
    head += [f"tile {sizes[-1]}²: tiles, time / (tiles × bare)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["model"], str(row["threads"]), f"{row['bare_1024_s']:.3f}", f"{row['engine_1024_s']:.3f}",
                 f"{row['ratio']:.3f}"]
        for mode in ("tile", "fit"):
            for s in sizes:
                r = row.get(f"{mode}_{s}")
                cells.append(f"{r['seconds']:.1f} ({r['mpix_per_s']:.2f}, {r['peak_rss_mib']:.0f})" if r else "")
        if len(sizes) > 1:
            big, small = row.get(f"tile_{sizes[-1]}"), row.get(f"tile_{sizes[-2]}")
            cells.append(f"{big['seconds'] / small['seconds']:.2f}×" if big else "")
        last = row.get(f"tile_{sizes[-1]}")
        cells.append(f"{last['tiles']}, {last['seconds'] / (last['tiles'] * row['bare_1024_s']):.2f}" if last else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Bare network on 1024², default threads, by onnxruntime graph optimisation level and with "
              "int8 dynamic quantisation (seconds, median):", "",
              "| model | " + " | ".join(VARIANTS) + " |", "|" + "---|" * (1 + len(VARIANTS))]
    for row in rows:
        if "variants" in row:
            lines.append(f"| {row['model']} | " + " | ".join(f"{row['variants'][v]['seconds']:.3f}"
                                                           for v in VARIANTS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
