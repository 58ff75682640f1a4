"""nnU-Net v2's sliding window with the ResEnc M network (issue #19): seconds per 1x160^3 volume,
next to mlseg's BM_SlidingWindow160_ResEncM / BM_ForwardResEncM on the same network and machine.

  /usr/bin/python3 bench/resenc/peer_sliding_window.py [--reps N] [--modes nomirror,mirror] [--threads 2]

The network is dynamic_network_architectures' ResidualEncoderUNet with the arch_kwargs nnU-Net's
ResEnc M planner writes for a 64^3 patch at 1 mm (5 stages, features 32-320, kernels 3, strides
1,2,2,2,2, BasicBlockD blocks 1,3,4,6,6, one conv per decoder stage), 1 input, 3 outputs, built by
nnU-Net's get_network_from_plans and initialised by the network's own initialize (He, last norms 0),
then every block's last norm weight set to 1 (as the mlseg benchmark does), deep supervision off,
eval(). nnUNetPredictor (tile_step_size 0.5, Gaussian, CPU, fp16 accumulators as shipped) is set up
with manual_initialization and times predict_sliding_window_return_logits on a seeded N(0,1)
1x160^3 volume (64 tiles of 64^3). Also times one 1x1x64^3 forward (BM_ForwardResEncM's workload).
Uses ../shared/peers (unmodified nnU-Net); prints one JSON line.
"""
import argparse
import contextlib
import io
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.environ.get('PEERS', os.path.join(HERE, '..', '..', '..', 'shared', 'peers'))
sys.path.insert(0, os.path.join(PEERS, 'bench'))
import _common  # noqa: E402

_common.setup_peers()

import torch  # noqa: E402
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor  # noqa: E402
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans  # noqa: E402

ARCH_KWARGS = {
    'n_stages': 5, 'features_per_stage': [32, 64, 128, 256, 320], 'conv_op': 'torch.nn.modules.conv.Conv3d',
    'kernel_sizes': [[3, 3, 3]] * 5, 'strides': [[1, 1, 1]] + [[2, 2, 2]] * 4, 'n_blocks_per_stage': [1, 3, 4, 6, 6],
    'n_conv_per_stage_decoder': [1, 1, 1, 1], 'conv_bias': True,
    'norm_op': 'torch.nn.modules.instancenorm.InstanceNorm3d', 'norm_op_kwargs': {'eps': 1e-05, 'affine': True},
    'dropout_op': None, 'dropout_op_kwargs': None, 'nonlin': 'torch.nn.LeakyReLU', 'nonlin_kwargs': {'inplace': True}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--reps', type=int, default=1)
    ap.add_argument('--modes', default='nomirror')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = get_network_from_plans('dynamic_network_architectures.architectures.unet.ResidualEncoderUNet', ARCH_KWARGS,
                                 ['conv_op', 'norm_op', 'dropout_op', 'nonlin'], 1, 3, allow_init=True,
                                 deep_supervision=False)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if 'conv2.norm.weight' in name:
                p.fill_(1.0)
    net.eval()
    res = {'bench': 'resenc_m_sliding_window', 'threads': args.threads, 'arch_kwargs': ARCH_KWARGS,
           'parameters': sum(p.numel() for p in net.parameters())}

    tile = torch.randn(1, 1, 64, 64, 64)
    with torch.no_grad():
        net(tile)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            net(tile)
            times.append(time.perf_counter() - t0)
    res['forward_64'] = _common.summarize(times)

    tr = _common.make_trainer((64, 64, 64), use_regions=True, batch_size=2)
    torch.manual_seed(1)
    vol = torch.randn(1, 160, 160, 160)
    for mode in args.modes.split(','):
        mirror = mode == 'mirror'
        with contextlib.redirect_stdout(io.StringIO()):
            pred = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror,
                                   perform_everything_on_device=True, device=torch.device('cpu'), verbose=False,
                                   allow_tqdm=False)
        pred.manual_initialization(net, tr.plans_manager, tr.configuration_manager, None, tr.dataset_json,
                                   'nnUNetTrainer', (0, 1, 2))
        res[mode] = _common.time_reps(lambda: pred.predict_sliding_window_return_logits(vol), args.reps, warmup=0)
    res['env'] = _common.env_info()
    print(json.dumps(res, default=float))


if __name__ == '__main__':
    main()
