"""Parity (d): what nnU-Net's training augmentation draws, per transform, over many draws.

  augmentation.py OUT DRAWS

nnUNetTrainer.get_training_transforms (3d_fullres, isotropic 32^3 patch, labels 1..3, no deep
supervision) is run DRAWS times on one 2-channel sample of the initial patch size
(configure_rotation_dummyDA_mirroring_and_inital_patch_size). Nothing is changed: every transform's
get_parameters is wrapped to record what it returned, and create_affine_matrix_3d to record the
rotation angles and scales SpatialTransform drew (seeds: torch 0, numpy 0).

meta.json, per quantity: "rate" (share of draws in which it happened) and "values" statistics
(n, mean, std, min, max, q10, q50, q90) of the drawn values pooled over the channels it touched;
"labels_preserved": every output label map's values are a subset of the input's.
"""
import contextlib
import io
import json
import os
import sys

import parity_common as pc
import numpy as np
import torch

PATCH = (32, 32, 32)


def stats(values):
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {'n': 0}
    q = np.quantile(v, [0.1, 0.5, 0.9])
    return {'n': int(v.size), 'mean': float(v.mean()), 'std': float(v.std()), 'min': float(v.min()),
            'max': float(v.max()), 'q10': float(q[0]), 'q50': float(q[1]), 'q90': float(q[2])}


def flat(x):
    if x is None:
        return []
    if isinstance(x, torch.Tensor):
        return x.flatten().tolist()
    if isinstance(x, (list, tuple)):
        out = []
        for i in x:
            out += flat(i)
        return out
    return [float(x)]


def main():
    out, draws = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    plans = pc._common.plans_dict(PATCH, batch_size=2, n_stages=4, features=(8, 16, 32, 64))
    with contextlib.redirect_stdout(io.StringIO()):
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
        tr = nnUNetTrainer(plans, '3d_fullres', 0, pc._common.dataset_json(False), device=torch.device('cpu'))
        rotation, dummy_2d, initial_patch, mirror_axes = tr.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        transforms = tr.get_training_transforms(PATCH, rotation, None, mirror_axes, dummy_2d, use_mask_for_norm=[False, False],
                                                is_cascaded=False, foreground_labels=[1, 2, 3], regions=None,
                                                ignore_label=None)
    import batchgeneratorsv2.transforms.spatial.spatial as spatial_module
    log = []
    real_affine = spatial_module.create_affine_matrix_3d

    def recording_affine(angles, scales):
        log.append(('affine', {'angles': [float(a) for a in angles], 'scales': [float(s) for s in scales]}))
        return real_affine(angles, scales)

    spatial_module.create_affine_matrix_3d = recording_affine

    def wrap(t):
        real = t.get_parameters

        def recording(**data_dict):
            params = real(**data_dict)
            log.append((type(t).__name__, params))
            return params
        t.get_parameters = recording

    names = []
    for t in transforms.transforms:
        inner = getattr(t, 'transform', None)
        wrap(inner if inner is not None else t)
        names.append(type(inner if inner is not None else t).__name__)

    torch.manual_seed(0)
    np.random.seed(0)
    rng = np.random.default_rng(5)
    image = torch.from_numpy(rng.standard_normal((2, *initial_patch)).astype(np.float32))
    seg = torch.from_numpy(pc.blob_segmentation(tuple(initial_patch), 7)[None])
    input_labels = set(torch.unique(seg).tolist())

    q = {k: {'count': 0, 'values': []} for k in (
        'rotation', 'scaling', 'noise', 'blur', 'brightness', 'contrast', 'low_resolution', 'inverted_gamma', 'gamma',
        'mirror_z', 'mirror_y', 'mirror_x')}
    preserved = True
    for _ in range(draws):
        log.clear()
        result = transforms(image=image.clone(), segmentation=seg.clone())
        preserved &= set(torch.unique(result['segmentation']).tolist()) <= input_labels
        for name, p in log:
            if name == 'affine':
                if any(a != 0 for a in p['angles']):
                    q['rotation']['count'] += 1
                    q['rotation']['values'] += p['angles']
                if any(s != 1 for s in p['scales']):
                    q['scaling']['count'] += 1
                    q['scaling']['values'].append(p['scales'][0])
            elif name == 'GaussianNoiseTransform':
                if p['num_apply'] > 0:
                    q['noise']['count'] += 1
                    q['noise']['values'] += flat(p['sigmas'])[:1]  # synchronized over channels
            elif name == 'GaussianBlurTransform':
                if int(torch.as_tensor(p['apply_to_channel']).sum()) > 0:
                    q['blur']['count'] += 1
                    q['blur']['values'] += flat(p['sigmas'])
            elif name == 'MultiplicativeBrightnessTransform':
                q['brightness']['count'] += 1
                q['brightness']['values'] += flat(p['multipliers'])
            elif name == 'ContrastTransform':
                q['contrast']['count'] += 1
                q['contrast']['values'] += flat(p['multipliers'])
            elif name == 'SimulateLowResolutionTransform':
                if len(p['apply_to_channel']) > 0:
                    q['low_resolution']['count'] += 1
                    q['low_resolution']['values'] += [row[0] for row in p['scales'].tolist()]
            elif name == 'GammaTransform':
                # nnU-Net's two gamma transforms run in this order: inverted (p_invert 1) first
                key = 'inverted_gamma' if bool(p['invert_image'] is not None and p['invert_image'].all()) else 'gamma'
                if p['gamma'] is not None:
                    q[key]['count'] += 1
                    q[key]['values'] += flat(p['gamma'])
            elif name == 'MirrorTransform':
                for a in p['axes']:
                    q[['mirror_z', 'mirror_y', 'mirror_x'][int(a)]]['count'] += 1  # spatial axes 0, 1, 2
    spatial_module.create_affine_matrix_3d = real_affine
    result = {k: {'rate': v['count'] / draws, 'values': stats(v['values'])} for k, v in q.items()}
    pc.write_meta(out, {'nnunet': 'nnUNetTrainer.get_training_transforms (batchgeneratorsv2)', 'draws': draws,
                        'transforms': names, 'initial_patch_size': [int(v) for v in initial_patch],
                        'rotation_for_DA': [float(v) for v in rotation], 'mirror_axes': [int(v) for v in mirror_axes],
                        'labels_preserved': bool(preserved), 'quantities': result})


if __name__ == '__main__':
    main()
