"""Peer side of BM_CascadeDilateBall128 / BM_CascadeCloseBall128 (bench/cascade_transforms_bench.cpp):
batchgeneratorsv2's cascade morphology (ApplyRandomBinaryOperatorTransform's binary_dilation_torch:
an FFT convolution with the ball, rounded, > 0; closing = erosion(dilation)) on the same 128^3 mask
(a sphere of radius 30 and two blobs), ball radius 8, one torch thread as in one loader worker.

  PYTHONPATH=../shared/peers/stubs:../shared/peers/vendor /usr/bin/python3 bench/cascade/bgv2_dilation.py

The functions are batchgeneratorsv2's own (random_binary_operator.py), with skimage's ball(8).
"""
import time

import numpy as np
import torch

from batchgeneratorsv2.transforms.nnunet.random_binary_operator import binary_closing_torch, binary_dilation_torch
from skimage.morphology import ball

PATCH, RADIUS, REPEATS = 128, 8, 5


def prior_mask():
    z, y, x = np.mgrid[:PATCH, :PATCH, :PATCH]
    mask = np.zeros((PATCH,) * 3, dtype=bool)
    for cz, cy, cx, r in ((64, 64, 64, 30), (20, 100, 30, 4), (110, 20, 100, 6)):
        mask |= (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    return torch.from_numpy(mask)


def main():
    torch.set_num_threads(1)
    mask, strel = prior_mask(), torch.from_numpy(ball(RADIUS, dtype=bool))
    for name, fn in (('dilation', binary_dilation_torch), ('closing', binary_closing_torch)):
        fn(mask, strel)
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            fn(mask, strel)
            times.append(time.perf_counter() - start)
        print(f'bgv2 {name} 128^3 ball {RADIUS}: median {1000 * np.median(times):.1f} ms over {REPEATS} (1 thread)')


if __name__ == '__main__':
    main()
