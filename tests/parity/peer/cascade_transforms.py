"""Parity (#24): batchgeneratorsv2's cascade morphology (ApplyRandomBinaryOperatorTransform's
binary_dilation_torch / binary_erosion_torch / binary_opening_torch / binary_closing_torch with
skimage's ball / disk) on fixed masks.

  cascade_transforms.py OUT

Masks: mask3d (36 x 40 x 44: two spheres, a bar touching the border, random specks) and mask2d
(1 x 48 x 52: the in-plane case, nnU-Net's disk). For every integer radius 1..8 and operator,
writes OUT/<mask>_<operator>_<radius>.npy (uint8) and the masks themselves.
"""
import os
import sys

import parity_common as pc
import numpy as np
import torch
from skimage.morphology import ball, disk

from batchgeneratorsv2.transforms.nnunet.random_binary_operator import (binary_closing_torch, binary_dilation_torch,
                                                                       binary_erosion_torch, binary_opening_torch)

OPERATORS = {'dilation': binary_dilation_torch, 'erosion': binary_erosion_torch, 'opening': binary_opening_torch,
             'closing': binary_closing_torch}


def masks():
    rng = np.random.default_rng(7)
    z, y, x = np.mgrid[:36, :40, :44]
    m3 = ((z - 14) ** 2 + (y - 15) ** 2 + (x - 16) ** 2 <= 81) | ((z - 26) ** 2 + (y - 28) ** 2 + (x - 30) ** 2 <= 36)
    m3[:6, 30:36, :] = True  # a bar along x, touching the patch border
    m3 |= rng.random(m3.shape) < 0.004
    yy, xx = np.mgrid[:48, :52]
    m2 = ((yy - 20) ** 2 + (xx - 22) ** 2 <= 100) | ((yy >= 40) & (xx < 12))
    m2 |= rng.random(m2.shape) < 0.01
    return {'mask3d': m3, 'mask2d': m2[None]}


def main():
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    for name, mask in masks().items():
        pc.save(out, name, mask.astype(np.uint8))
        for radius in range(1, 9):
            for op_name, op in OPERATORS.items():
                if name == 'mask2d':  # random_binary_operator: a 2D image gets the disk
                    result = op(torch.from_numpy(mask[0]), torch.from_numpy(disk(radius, dtype=bool)))[None]
                else:
                    result = op(torch.from_numpy(mask), torch.from_numpy(ball(radius, dtype=bool)))
                pc.save(out, f'{name}_{op_name}_{radius}', result.numpy().astype(np.uint8))
    pc.write_meta(out, {'nnunet': 'batchgeneratorsv2 random_binary_operator binary_{dilation,erosion,opening,closing}_torch',
                        'radii': list(range(1, 9))})


if __name__ == '__main__':
    main()
