"""Speed and memory of the engine against the bare network, on generated georeferenced rasters.

Every case runs in a fresh subprocess so its peak resident memory is its own.
Usage: python -m bench.bench [--models pix2pixcc mrfed] [--sizes 2048 4096 8192] [--threads 0 1 2]
       [--device cpu|gpu] [--windows-size 4096] [--scheduler local:2] [--solve-windows 10000] [--out bench/results]   (run from the repository root; writes results.json and results.md)
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


def timed_network_calls():
    """Make every network call the engine makes (ModelSession.run, from any thread) append its
    duration to the returned list; the bench's child process ends before anything else needs it."""
    from dtm_estimator.engine import runtime
    seconds, run = [], runtime.ModelSession.run

    def timed_run(self, batch):
        start = time.perf_counter()
        try:
            return run(self, batch)
        finally:
            seconds.append(time.perf_counter() - start)

    runtime.ModelSession.run = timed_run
    return seconds


def case_compare(model_path, raster, threads, repeats, device="cpu", scales="single"):
    """Bare network against the whole algorithm on 1024², alternating, on the engine's own session.

    Alternating run by run puts both under the same machine load; each engine run writes a new
    file (like Processing's temporary outputs), removed outside the timer. The engine's overhead is
    its wall time minus the time its network calls took inside it (one call at scales='single', one per
    scale and piece at 'multi').
    """
    from dtm_estimator.engine import EstimateOptions, estimate_dtm, open_model
    options = EstimateOptions(model_path, device=device, threads=threads or None, scales=scales)
    model, _ = open_model(model_path, device, threads or None)
    batch = network_input(raster, model_path)
    network_seconds = timed_network_calls()
    out = tempfile.mktemp(suffix=".tif", dir=os.path.dirname(raster))
    bare, whole, overhead = [], [], []
    for _ in range(repeats + 1):  # the first round is the warm-up
        network_seconds.clear()
        model.run(batch)
        bare.append(network_seconds.pop())
        start = time.perf_counter()
        estimate_dtm(raster, out, options)
        whole.append(time.perf_counter() - start)
        overhead.append(whole[-1] - sum(network_seconds))
        os.remove(out)
    return {"bare_s": statistics.median(bare[1:]), "engine_s": statistics.median(whole[1:]),
            "overhead_ms": 1000 * statistics.median(overhead[1:]), "graph_optimization": model.graph_optimization,
            "provider": model.provider}


def network_input(raster, model_path):
    """The 1024² bench raster as the network sees it (8-bit v/127.5 − 1), batch of one; beside it, for a
    model that takes flat ground's grey level, that level (mid-grey), and for one that takes the sun's
    elevation, 45°, as the engine feeds them."""
    import numpy as np
    from osgeo import gdal
    from dtm_estimator.engine import read_model_card
    from dtm_estimator.engine.flat_grey import model_input, sun_elevation_level
    image = (gdal.Open(raster).ReadAsArray().astype(np.float32) / 127.5 - 1.0)[np.newaxis, np.newaxis]
    return model_input(read_model_card(model_path), image, 0.0, sun_elevation_level(45.0))


def case_variant(model_path, raster, variant, repeats):
    """Bare network time for a precision/optimisation variant of the model (CPU, default threads),
    and how far its output strays from the float32 model at onnxruntime's default level."""
    import numpy as np
    import onnxruntime as ort
    path, options = model_path, ort.SessionOptions()
    if variant == "int8-dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        path = tempfile.mktemp(suffix=".onnx")
        quantize_dynamic(model_path, path, weight_type=QuantType.QUInt8)
    elif variant == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
        path = tempfile.mktemp(suffix=".onnx")
        onnx.save(convert_float_to_float16(onnx.load(model_path), keep_io_types=True), path)
    else:
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, variant)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    batch = network_input(raster, model_path)
    reference = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"]).run(None, {"image": batch})[0]
    difference = float(np.abs(session.run(None, {"image": batch})[0] - reference).max())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"image": batch})
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "max_abs_difference": difference}


VARIANTS = ("ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL", "int8-dynamic", "fp16")


def case_engine(model_path, raster, mode, threads, device="cpu", scales="single"):
    """One run of the whole algorithm on a large raster, in a fresh process (so its peak memory is its own).

    The session is opened and run once before the clock starts, as in a QGIS session after its first
    DTM; that start-up (session creation and onnxruntime's slower first runs) is reported apart.
    """
    import numpy as np
    from dtm_estimator.engine import EstimateOptions, estimate_dtm, open_model
    from dtm_estimator.engine.flat_grey import input_channels
    options = EstimateOptions(model_path, device=device, large_raster=mode, threads=threads or None, scales=scales)
    out = tempfile.mktemp(suffix=".tif", dir=os.path.dirname(raster))
    start = time.perf_counter()
    model, _ = open_model(model_path, device, threads or None)
    for _ in range(2):  # onnxruntime's first two runs are slower
        model.run(np.zeros((1, input_channels(model.card), model.card.input_size, model.card.input_size), np.float32))
    startup = time.perf_counter() - start
    network_seconds = timed_network_calls()
    start = time.perf_counter()
    report = estimate_dtm(raster, out, options)
    seconds = time.perf_counter() - start
    os.remove(out)
    return {"seconds": seconds, "tiles": report.tiles, "startup_s": startup, "network_s": sum(network_seconds)}


def case_windows(model_path, raster, scheduler, device="cpu"):
    """Tile mode's windows per second in this process (scheduler '') or on Dask ('local:2'): the steady
    rate between the first and the last window back, so session and cluster start-up stay apart."""
    from dtm_estimator.engine import EstimateOptions, estimate_dtm
    options = EstimateOptions(model_path, device=device, scheduler=scheduler or None, scales="single")
    out = tempfile.mktemp(suffix=".tif", dir=os.path.dirname(raster))
    back = []
    start = time.perf_counter()
    report = estimate_dtm(raster, out, options, progress=lambda percent: back.append(time.perf_counter()))
    seconds = time.perf_counter() - start
    os.remove(out)
    return {"windows": report.tiles, "seconds": seconds, "first_window_s": back[0] - start,
            "windows_per_s": (len(back) - 1) / (back[-1] - back[0])}


def case_offset_solve(windows):
    """The least-squares offset solve for a square plan of about `windows` windows, with known offsets
    put into the overlap sums as a 1024² window's record() would; also record()'s own cost per window."""
    import numpy as np
    from dtm_estimator.engine.offsets import OverlapLedger
    from dtm_estimator.engine.tile_plan import TilePlan
    side = int(round(windows ** 0.5))
    start = time.perf_counter()
    plan = TilePlan(896 * side + 128, 896 * side + 128, 1024, 128)
    plan_seconds = time.perf_counter() - start
    ledger = OverlapLedger(plan)
    truth = np.random.default_rng(0).normal(0, 100, len(plan))
    first, second = plan.pairs()
    ledger.count[:] = 128 * 1024
    ledger.first_sum[:] = ledger.count * -truth[first]  # window k predicts the common level − truth[k]
    ledger.second_sum[:] = ledger.count * -truth[second]
    ledger.has_prediction[:] = True
    start = time.perf_counter()
    offsets = ledger.solve()
    solve_seconds = time.perf_counter() - start
    record = OverlapLedger(plan)
    elevation, times = np.random.default_rng(1).random((1024, 1024), np.float32), []
    interior = [row * side + col for row in range(1, side - 1) for col in range(1, side - 1)][:20]
    for index in interior:  # interior windows: 8 neighbours each
        started = time.perf_counter()
        record.record(index, elevation, None)
        times.append(time.perf_counter() - started)
    return {"windows": len(plan), "pairs": len(first), "plan_s": plan_seconds, "solve_s": solve_seconds,
            "max_error": float(np.abs(offsets - (truth - truth[0])).max()),
            "record_ms": 1000 * statistics.median(times)}


def case_photoclinometry(size=1024, repeats=3):
    """The photoclinometric refinement of one size² window (engine/photoclinometry.py), model-free: a smooth
    random DEM rendered as gdaldem does at 315°/45°, refined from its blurred self; median seconds."""
    import numpy as np
    from scipy import ndimage
    from dtm_estimator.engine.flat_grey import hillshade_flat_grey
    from dtm_estimator.engine.photoclinometry import (Photoclinometry, cos_incidence, horn_slopes, refine_heights,
                                                      sun_vector)
    rng = np.random.default_rng(0)
    dem = ndimage.gaussian_filter(rng.standard_normal((size, size)), 4) * 40  # pixel units
    cos_i, _ = cos_incidence(*horn_slopes(dem, 1.0, 1.0), sun_vector(315.0, 45.0))
    image = (1 + np.round(254 * np.clip(np.pad(cos_i, 1, mode="edge"), 0, 1))) / 127.5 - 1
    plan = Photoclinometry(315.0, 45.0, -1.0, hillshade_flat_grey(45.0) / 127.5 - 1, 1.0)
    start = ndimage.gaussian_filter(dem, 3).astype(np.float32)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        refined = refine_heights(start, image.astype(np.float32), None, plan)
        times.append(time.perf_counter() - began)
    return {"size": size, "seconds": statistics.median(times), "iterations": plan.iterations,
            "r_start": float(np.corrcoef(start.ravel(), dem.ravel())[0, 1]),
            "r_refined": float(np.corrcoef(refined.ravel(), dem.ravel())[0, 1])}


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
                         cwd=ROOT)
    if out.returncode:
        last = (out.stderr.strip().splitlines() or ["no error output"])[-1]
        raise SystemExit(f"bench case {kind} {kwargs} failed: {last}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_arguments(parser, args):
    """Refuse plans the cases cannot measure, with the reason, before any raster is made."""
    from dtm_estimator.engine.pipeline import WHOLE_WINDOW_MAX
    if args.windows_size <= WHOLE_WINDOW_MAX:
        parser.error(f"--windows-size {args.windows_size}: a raster up to {WHOLE_WINDOW_MAX} px a side runs as one "
                     "window, and windows per second need at least two; give more than that (default 4096)")
    if int(round(args.solve_windows ** 0.5)) < 3:
        parser.error(f"--solve-windows {args.solve_windows}: the offset solve times record() on interior windows, "
                     "which a plan needs at least 3 × 3 windows to have; give 9 or more (default 10000)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["pix2pixcc", "mrfed"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[2048, 4096, 8192])
    parser.add_argument("--threads", nargs="+", type=int, default=[0, 1, 2],
                        help="intra-op threads (0: onnxruntime's default); the size sweep runs at the first")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="gpu: the engine's GPU provider (CUDA); the CPU-only variant table is skipped")
    parser.add_argument("--windows-size", type=int, default=4096,
                        help="raster size for the windows/s cases (in-process and on a Dask cluster)")
    parser.add_argument("--scheduler", default="local:2", help="Dask cluster for the windows/s case ('' skips it)")
    parser.add_argument("--solve-windows", type=int, default=10000, help="plan size for the offset solve case")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args()
    check_arguments(parser, args)
    os.makedirs(args.out, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="dtm-bench-")
    rasters = {size: make_raster(os.path.join(scratch, f"r{size}.tif"), size)
               for size in sorted({1024, 2048, args.windows_size, *args.sizes})}
    rows = []
    for name in args.models:
        model = name if name.endswith(".onnx") else os.path.join(ROOT, "models", f"{name}.onnx")
        for threads in args.threads:
            compare = run_case("compare", model_path=model, raster=rasters[1024], threads=threads,
                               repeats=args.repeats, device=args.device)
            row = {"model": name, "threads": threads or "default", "level": compare["graph_optimization"],
                   "provider": compare["provider"],
                   "bare_1024_s": compare["bare_s"], "engine_1024_s": compare["engine_s"],
                   "ratio": compare["engine_s"] / compare["bare_s"], "overhead_ms": compare["overhead_ms"]}
            sweep = threads == args.threads[0]  # sizes and modes once, at the first thread setting
            for mode in ("tile", "fit") if sweep else ():
                for size in args.sizes:
                    result = run_case("engine", model_path=model, raster=rasters[size], mode=mode,
                                      threads=threads, device=args.device)
                    row[f"{mode}_{size}"] = dict(result, mpix_per_s=size * size / 1e6 / result["seconds"])
            if sweep:  # the engine's default, multi-scale: what it costs against one scale
                multi = run_case("compare", model_path=model, raster=rasters[1024], threads=threads,
                                 repeats=max(3, args.repeats // 3), device=args.device, scales="multi")
                row["multi_1024"] = multi
                row["multi_tile_2048"] = run_case("engine", model_path=model, raster=rasters[2048], mode="tile",
                                                  threads=threads, device=args.device, scales="multi")
            for scheduler in ("", args.scheduler) if sweep else ():
                result = run_case("windows", model_path=model, raster=rasters[args.windows_size],
                                  scheduler=scheduler, device=args.device)
                row[f"windows_{scheduler or 'in-process'}"] = result
            if sweep and args.device == "cpu":
                row["variants"] = {v: run_case("variant", model_path=model, raster=rasters[1024], variant=v,
                                            repeats=args.repeats)
                                   for v in VARIANTS}
            rows.append(row)
            print(json.dumps(row), flush=True)
    solve = run_case("offset_solve", windows=args.solve_windows)
    print(json.dumps(solve), flush=True)
    refinement = run_case("photoclinometry")
    print(json.dumps(refinement), flush=True)
    where = f"{machine()}, provider {', '.join(sorted({row['provider'] for row in rows}))}"
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump({"machine": where, "rows": rows, "offset_solve": solve, "photoclinometry": refinement}, handle,
                  indent=1)
    table = (markdown(rows, args.sizes) + "\n\n" + scales_markdown(rows) + "\n\n"
             + windows_markdown(rows, args.windows_size, args.scheduler, solve) + "\n\n"
             + photoclinometry_markdown(refinement))
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write(f"Machine: {where}\n\n{table}\n")
    print(table)


def photoclinometry_markdown(case):
    return (f"Photoclinometric refinement (only with FLAT_GREY and SUN_ELEVATION; model-free, one process): one "
            f"{case['size']}² window, {case['iterations']} L-BFGS steps, {case['seconds']:.2f} s (median of 3; r against "
            f"the DEM {case['r_start']:.3f} → {case['r_refined']:.3f}), peak {case['peak_rss_mib']:.0f} MiB.")


def scales_markdown(rows):
    """The default multi-scale run (½×, 1×, 2× averaged) against one scale, on the same machine and load."""
    lines = ["Every case above runs at one scale (SCALES=single). The engine's default, SCALES=multi, infers each "
             "window at ½×, 1× and 2× its pixel count and averages the heights (engine/multiscale.py):", "",
             "| model | engine 1024² s, single | engine 1024² s, multi | multi/single | network calls s, multi | "
             "tile 2048² s, single | tile 2048² s, multi (peak MiB) |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        if "multi_1024" not in row:
            continue
        multi, tile = row["multi_1024"], row["multi_tile_2048"]
        single_tile = row.get("tile_2048", {}).get("seconds")
        lines.append(f"| {row['model']} | {row['engine_1024_s']:.3f} | {multi['engine_s']:.3f} | "
                     f"{multi['engine_s'] / row['engine_1024_s']:.1f}× | "
                     f"{multi['engine_s'] - multi['overhead_ms'] / 1000:.3f} | "
                     f"{'' if single_tile is None else f'{single_tile:.1f}'} | {tile['seconds']:.1f} "
                     f"({tile['peak_rss_mib']:.0f}) |")
    return "\n".join(lines)


def windows_markdown(rows, size, scheduler, solve):
    """Windows per second in this process and on the Dask cluster, and the offset solve."""
    lines = [f"Tile mode on {size}², windows per second between the first and the last window back "
             "(start-up apart: session, and for Dask the cluster), whole run in brackets:", "",
             f"| model | windows | in-process windows/s (run s) | {scheduler} windows/s (run s) |", "|---|---|---|---|"]
    for row in rows:
        cases = [row.get(f"windows_{name}") for name in ("in-process", scheduler)]
        if all(cases):
            lines.append(f"| {row['model']} | {cases[0]['windows']} | " + " | ".join(
                f"{case['windows_per_s']:.2f} ({case['seconds']:.1f})" for case in cases) + " |")
    lines += ["", f"Offset solve: {solve['windows']} windows, {solve['pairs']} overlapping pairs: plan "
              f"{solve['plan_s']:.3f} s, solve {solve['solve_s']:.3f} s (largest error on known offsets "
              f"{solve['max_error']:.1e}); recording one 1024² window's overlap sums {solve['record_ms']:.2f} ms."]
    return "\n".join(lines)


def machine():
    import platform
    import onnxruntime
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    return f"{cpu}, {os.cpu_count()} cores, onnxruntime {onnxruntime.__version__}, {platform.platform()}"


def markdown(rows, sizes):
    head = ["model", "threads", "graph optimisation", "bare 1024² s", "engine 1024² s", "engine/bare",
            "engine overhead ms"]
    for mode in ("tile", "fit"):
        head += [f"{mode} {s}² s (MP/s, peak MiB)" for s in sizes]
    head += [f"tile {sizes[-1]}²/{sizes[-2]}² time"] if len(sizes) > 1 else []
    head += [f"tile {sizes[-1]}²: tiles, time / (tiles × bare)",
             f"tile {sizes[-1]}²: network s, rest s", "start-up s (session + first run)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["model"], str(row["threads"]), row["level"], f"{row['bare_1024_s']:.3f}",
                 f"{row['engine_1024_s']:.3f}", f"{row['ratio']:.3f}", f"{row['overhead_ms']:.1f}"]
        for mode in ("tile", "fit"):
            for s in sizes:
                r = row.get(f"{mode}_{s}")
                cells.append(f"{r['seconds']:.1f} ({r['mpix_per_s']:.2f}, {r['peak_rss_mib']:.0f})" if r else "")
        if len(sizes) > 1:
            big, small = row.get(f"tile_{sizes[-1]}"), row.get(f"tile_{sizes[-2]}")
            cells.append(f"{big['seconds'] / small['seconds']:.2f}×" if big else "")
        last = row.get(f"tile_{sizes[-1]}")
        cells.append(f"{last['tiles']}, {last['seconds'] / (last['tiles'] * row['bare_1024_s']):.2f}" if last else "")
        cells.append(f"{last['network_s']:.1f}, {last['seconds'] - last['network_s']:.2f}" if last else "")
        cells.append(f"{last['startup_s']:.2f}" if last else "")
        lines.append("| " + " | ".join(cells) + " |")
    if not any("variants" in row for row in rows):
        return "\n".join(lines)
    lines += ["", "Bare network on 1024², default threads, by onnxruntime graph optimisation level, with int8 "
              "dynamic quantisation and in float16: seconds (median) and, in brackets, the largest output "
              "difference from the float32 model at onnxruntime's default level (in the model's output units: "
              "pixel units for the shipped models, whose outputs span tens). The "
              "engine runs each model at the level its card names (column 'graph optimisation' above).", "",
              "| model | " + " | ".join(VARIANTS) + " |", "|" + "---|" * (1 + len(VARIANTS))]
    for row in rows:
        if "variants" in row:
            lines.append(f"| {row['model']} | " + " | ".join(
                f"{row['variants'][v]['seconds']:.3f} ({row['variants'][v]['max_abs_difference']:.0e})"
                for v in VARIANTS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
