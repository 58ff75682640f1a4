"""ResidualEncoderUNet as nnU-Net builds it (issue #19): get_network_from_plans with the ResEnc presets'
architecture (nnUNetPlannerResEncM: BasicBlockD, blocks per stage 1, 3, 4, 6, one conv per decoder
stage, InstanceNorm, LeakyReLU, conv_bias True), here 4 stages of 8-64 features with anisotropic
strides and kernels, 2 input channels, 3 outputs, deep supervision on; network.initialize applied
(InitWeights_He(1e-2) and init_last_bn_before_add_to_0), then seeded perturbations so that no
parameter is at its initial value.

  residual_encoder_unet.py OUT

Writes: arch.json (arch_kwargs as in plans.json), names (meta), init/<name>.npy (the initialised
weights), weights/<name>.npy (perturbed), input.npy, output_<k>.npy (float64 forward of the perturbed
network, deep-supervision level k, full resolution first), meta.json.
"""
import json
import os
import sys

import parity_common as pc  # noqa: F401  (puts ../shared/peers on the path)
import numpy as np
import torch

ARCH = {
    'n_stages': 4,
    'features_per_stage': [8, 16, 32, 64],
    'conv_op': 'torch.nn.modules.conv.Conv3d',
    'kernel_sizes': [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
    'strides': [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]],
    'n_blocks_per_stage': [1, 3, 4, 6],
    'n_conv_per_stage_decoder': [1, 1, 1],
    'conv_bias': True,
    'norm_op': 'torch.nn.modules.instancenorm.InstanceNorm3d',
    'norm_op_kwargs': {'eps': 1e-05, 'affine': True},
    'dropout_op': None,
    'dropout_op_kwargs': None,
    'nonlin': 'torch.nn.LeakyReLU',
    'nonlin_kwargs': {'inplace': True},
}
CLASS = 'dynamic_network_architectures.architectures.unet.ResidualEncoderUNet'
INPUT = (1, 2, 16, 32, 32)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    torch.manual_seed(0)
    net = get_network_from_plans(CLASS, ARCH, ['conv_op', 'norm_op', 'dropout_op', 'nonlin'], INPUT[1], 3,
                                 deep_supervision=True)
    with open(os.path.join(out, 'arch.json'), 'w') as f:
        json.dump({'network_class_name': CLASS, 'arch_kwargs': ARCH}, f, indent=1)
    params = list(net.named_parameters())
    names = pc.save_state(out, 'init', params)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for _, p in params:
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    pc.save_state(out, 'weights', params)
    net.double()
    x = torch.from_numpy(np.random.default_rng(2).standard_normal(INPUT))
    pc.save(out, 'input', x.numpy())
    with torch.no_grad():
        outputs = net(x)
    for k, o in enumerate(outputs):
        pc.save(out, f'output_{k}', o.numpy())
    state_keys = list(net.state_dict().keys())
    pc.write_meta(out, {'nnunet': 'get_network_from_plans(ResidualEncoderUNet) + network.initialize', 'names': names,
                        'state_dict_keys': state_keys, 'num_outputs': len(outputs), 'input_shape': list(INPUT)})


if __name__ == '__main__':
    main()
