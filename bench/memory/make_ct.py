"""Inputs of bench/memory/predict_ct.sh: a synthetic whole-body-like CT and two untrained nnU-Net v2
model folders with 117 label channels, loadable by nnU-Net's predictor and by `mlseg predict -m`.

  make_ct.py OUT Z            (Z slices of 512 x 512, e.g. 600 or 150)

OUT/input_Z/ct_0000.nii.gz: int16 HU, spacing 0.8 x 0.8 x 1.5 mm (x, y, z), air (-1000) around an
elliptic body (soft tissue ~40 HU, noise) with a spine-like bright rod, so cropping to the nonzero
box changes nothing (as for a real CT, whose air is not 0).
OUT/model_<sigmoid|softmax>/Dataset990_WholeBody/nnUNetTrainer__nnUNetPlans__3d_fullres: plans.json
(PlainConvUNet, 3 stages, features 4-8-16, one conv per stage, patch 32 x 128 x 128, target spacing
the image's, so nothing is resampled), dataset.json (softmax: labels 1..117, 118 classes; sigmoid:
117 regions (the first the union of all labels, the others one label each) with regions_class_order) and fold_0/checkpoint_final.pth as
nnUNetTrainer.save_checkpoint writes it (network built by nnU-Net from the plans, seeded weights).
The network is small on purpose: what is measured is the memory of 117 output channels over a large
volume, not the network.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
import torch

CHANNELS = 117
PATCH = [32, 128, 128]
SPACING_ZYX = [1.5, 0.8, 0.8]
SHAPE_YX = (512, 512)
NAME = 'Dataset990_WholeBody'


def write_ct(path, z):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SHAPE_YX[0], 0:SHAPE_YX[1]]
    body = ((yy - 256) / 170.0) ** 2 + ((xx - 256) / 230.0) ** 2 <= 1.0
    spine = ((yy - 330) / 18.0) ** 2 + ((xx - 256) / 18.0) ** 2 <= 1.0
    volume = np.full((z,) + SHAPE_YX, -1000, dtype=np.int16)
    for k in range(z):
        plane = np.where(body, 40 + rng.normal(0, 20, SHAPE_YX), -1000 + rng.normal(0, 5, SHAPE_YX))
        plane[spine] = 700
        volume[k] = plane.astype(np.int16)
    # nibabel's array is x, y, z.
    affine = np.diag([SPACING_ZYX[2], SPACING_ZYX[1], SPACING_ZYX[0], 1.0])
    image = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine)
    image.header.set_zooms((SPACING_ZYX[2], SPACING_ZYX[1], SPACING_ZYX[0]))
    nib.save(image, path)


def plans():
    arch = {
        'network_class_name': 'dynamic_network_architectures.architectures.unet.PlainConvUNet',
        'arch_kwargs': {
            'n_stages': 3, 'features_per_stage': [4, 8, 16], 'conv_op': 'torch.nn.modules.conv.Conv3d',
            'kernel_sizes': [[1, 3, 3], [3, 3, 3], [3, 3, 3]], 'strides': [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
            'n_conv_per_stage': [1, 1, 1], 'n_conv_per_stage_decoder': [1, 1], 'conv_bias': True,
            'norm_op': 'torch.nn.modules.instancenorm.InstanceNorm3d', 'norm_op_kwargs': {'eps': 1e-05, 'affine': True},
            'dropout_op': None, 'dropout_op_kwargs': None, 'nonlin': 'torch.nn.LeakyReLU', 'nonlin_kwargs': {'inplace': True}},
        '_kw_requires_import': ['conv_op', 'norm_op', 'dropout_op', 'nonlin']}
    kwargs = {'is_seg': False, 'order': 3, 'order_z': 0, 'force_separate_z': None}
    return {
        'dataset_name': NAME, 'plans_name': 'nnUNetPlans',
        'original_median_spacing_after_transp': SPACING_ZYX, 'original_median_shape_after_transp': [600, 512, 512],
        'image_reader_writer': 'NibabelIO', 'transpose_forward': [0, 1, 2], 'transpose_backward': [0, 1, 2],
        'experiment_planner_used': 'ExperimentPlanner', 'label_manager': 'LabelManager',
        'foreground_intensity_properties_per_channel': {'0': {
            'max': 1500.0, 'mean': 60.0, 'median': 45.0, 'min': -1000.0, 'percentile_00_5': -100.0,
            'percentile_99_5': 800.0, 'std': 120.0}},
        'configurations': {'3d_fullres': {
            'data_identifier': 'nnUNetPlans_3d_fullres', 'preprocessor_name': 'DefaultPreprocessor', 'batch_size': 2,
            'patch_size': PATCH, 'median_image_size_in_voxels': [600, 512, 512], 'spacing': SPACING_ZYX,
            'normalization_schemes': ['ZScoreNormalization'], 'use_mask_for_norm': [False],
            'resampling_fn_data': 'resample_data_or_seg_to_shape', 'resampling_fn_seg': 'resample_data_or_seg_to_shape',
            'resampling_fn_data_kwargs': kwargs, 'resampling_fn_seg_kwargs': {**kwargs, 'is_seg': True, 'order': 1},
            'resampling_fn_probabilities': 'resample_data_or_seg_to_shape',
            'resampling_fn_probabilities_kwargs': {**kwargs, 'order': 1},
            'architecture': arch, 'batch_dice': False}}}


def dataset(kind):
    names = ['structure_%03d' % (c + 1) for c in range(CHANNELS)]
    ds = {'channel_names': {'0': 'CT'}, 'numTraining': 1, 'file_ending': '.nii.gz'}
    if kind == 'softmax':
        ds['labels'] = {'background': 0, **{n: c + 1 for c, n in enumerate(names)}}
    else:
        # Region 0 is the union of all labels (nnU-Net, and mlseg, take a model as region-based
        # when a region has more than one label); the others one label each.
        ds['labels'] = {'background': 0, **{n: list(range(1, CHANNELS + 1)) if c == 0 else [c + 1] for c, n in enumerate(names)}}
        ds['regions_class_order'] = list(range(1, CHANNELS + 1))
    return ds


def write_model(out, kind):
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    folder = os.path.join(out, 'model_' + kind, NAME, 'nnUNetTrainer__nnUNetPlans__3d_fullres')
    checkpoint = os.path.join(folder, 'fold_0', 'checkpoint_final.pth')
    if os.path.exists(checkpoint):
        return folder
    os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
    p = plans()
    arch = p['configurations']['3d_fullres']['architecture']
    outputs = CHANNELS + 1 if kind == 'softmax' else CHANNELS
    torch.manual_seed(0)
    network = get_network_from_plans(arch['network_class_name'], arch['arch_kwargs'], arch['_kw_requires_import'], 1,
                                     outputs, allow_init=True, deep_supervision=True)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, q in network.named_parameters():
            q.add_(0.2 * torch.randn(q.shape, generator=g, dtype=q.dtype))
    # What nnUNetTrainer.save_checkpoint writes (the fields predictors read).
    torch.save({'network_weights': network.state_dict(), 'optimizer_state': None, 'grad_scaler_state': None,
                'logging': {}, '_best_ema': None, 'current_epoch': 1000,
                'init_args': {'plans': p, 'configuration': '3d_fullres', 'fold': 0, 'dataset_json': dataset(kind)},
                'trainer_name': 'nnUNetTrainer', 'inference_allowed_mirroring_axes': (0, 1, 2)}, checkpoint)
    json.dump(p, open(os.path.join(folder, 'plans.json'), 'w'), indent=1)
    json.dump(dataset(kind), open(os.path.join(folder, 'dataset.json'), 'w'), indent=1)
    return folder


def main():
    out, z = sys.argv[1], int(sys.argv[2])
    images = os.path.join(out, 'input_%d' % z)
    os.makedirs(images, exist_ok=True)
    path = os.path.join(images, 'ct_0000.nii.gz')
    if not os.path.exists(path):
        write_ct(path, z)
    for kind in ('sigmoid', 'softmax'):
        print(write_model(out, kind))


if __name__ == '__main__':
    main()
