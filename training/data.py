"""Training and held-out batches from the real-DEM corpus (terrain/), as torch tensors.

Images are normalised as the engine feeds 8-bit rasters (v/127.5 − 1); targets are heights in pixel
units with the mean removed; masks are 1 where the truth is valid. Views drawn `with_flat` carry a second,
constant image channel: the grey level of flat ground in that image, normalised alike; views drawn
`with_sun_elevation` a third, the sun's elevation as the engine feeds it (engine/grey_levels.py).
"""
import math

import numpy as np
import torch

from terrain import corpus
from terrain.engine_parts import grey_levels
from terrain.render import ViewSource, random_view


def load_dems(split, cache=None):
    """The corpus split from GDAL, or from a cache written by `python -m terrain.corpus` (no GDAL needed)."""
    return corpus.load_cache(cache) if cache else corpus.load_sites(split)


def normalise_grey(values):
    return np.asarray(values, np.float32) / 127.5 - 1.0


def to_tensors(views):
    images, targets, masks, *extra = zip(*views)
    image = torch.from_numpy(normalise_grey(np.stack(images)))[:, None]
    channels = [image]
    if extra:  # one grey level per view, as a constant channel beside the image
        channels.append(torch.from_numpy(normalise_grey(extra[0]))[:, None, None, None].expand_as(image))
    if len(extra) > 1:  # and the sun's elevation alike
        levels = np.array([grey_levels.sun_elevation_level(e) for e in extra[1]], np.float32)
        channels.append(torch.from_numpy(levels)[:, None, None, None].expand_as(image))
    image = torch.cat(channels, 1)
    return image, torch.from_numpy(np.stack(targets))[:, None], torch.from_numpy(np.stack(masks))[:, None]


class RandomViews(torch.utils.data.IterableDataset):
    """Endless random views; each site is drawn with weight √(valid pixels), so small sites are not starved."""

    def __init__(self, dems, size, seed, **view_options):
        """`view_options`: random_view's scale_range, albedo_contrast, tilt_max, tilt_direction and with_flat
        (its defaults where absent)."""
        super().__init__()
        self.dems, self.size, self.seed, self.view_options = dems, size, seed, view_options

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info else 0
        rng = np.random.default_rng([self.seed, worker, torch.initial_seed() % 2 ** 31])
        sources = [ViewSource(dem) for dem in self.dems]
        weights = np.array([math.sqrt(np.isfinite(d.heights).sum()) for d in self.dems])
        weights /= weights.sum()
        while True:
            view = random_view(sources[rng.choice(len(sources), p=weights)], rng, self.size, **self.view_options)
            if view is not None:
                yield view


def loader(dems, size, batch, workers, seed, **view_options):
    views = RandomViews(dems, size, seed, **view_options)
    return torch.utils.data.DataLoader(views, batch_size=batch, num_workers=workers,
                                       collate_fn=to_tensors, persistent_workers=workers > 0,
                                       prefetch_factor=4 if workers > 0 else None, pin_memory=torch.cuda.is_available())


def heldout_views(dems, size, count, seed=12345, with_flat=False, with_sun_elevation=False):
    """A fixed set of views of the held-out sites (same seed, same views; `with_flat` and `with_sun_elevation`
    add their channels only)."""
    rng = np.random.default_rng(seed)
    sources = [ViewSource(dem) for dem in dems]
    views = []
    while len(views) < count:
        view = random_view(sources[len(views) % len(sources)], rng, size, with_flat=with_flat,
                           with_sun_elevation=with_sun_elevation)
        if view is not None:
            views.append(view)
    return to_tensors(views)
