"""Parity (f): nnU-Net's sliding-window inference on one image with fixed weights.

  sliding_window.py OUT

nnUNetPredictor.predict_sliding_window_return_logits (tile step 0.5, Gaussian importance map,
mirroring over axes (0, 1, 2) or none) on a (1, 28, 60, 40) image with a 32^3 patch: the z axis
is smaller than the patch (padding), y and x need uneven steps. The network is PlainConvUNet from
nnUNetTrainer.build_network_architecture (seed 0, 4 classes, no deep supervision).

nnU-Net accumulates logits and weights in float16 (predict_from_raw_data.py:619-623). It runs
as it is ("fp16", without mirroring), and with those two accumulators and the Gaussian made float32 by
replacing `torch.half` / compute_gaussian's dtype in the module's namespace ("fp32", the only
change), so that mlseg's float32 result can be compared at 1e-4.

Writes: plans.json, init/<param>.npy, image.npy, logits_<fp32|fp16>_<mirror|nomirror>.npy, meta.json.
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
SHAPE = (1, 28, 60, 40)


class _Float32Accumulators:
    """torch, except that torch.half is float32."""
    half = torch.float32

    def __getattr__(self, name):
        return getattr(torch, name)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    plans = pc._common.plans_dict(PATCH, batch_size=2, n_stages=4, features=(8, 16, 32, 64))
    with open(os.path.join(out, 'plans.json'), 'w') as f:
        json.dump(plans, f, indent=1)
    with contextlib.redirect_stdout(io.StringIO()):
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
        tr = nnUNetTrainer(json.loads(json.dumps(plans)), '3d_fullres', 0, pc._common.dataset_json(False),
                           device=torch.device('cpu'))
    torch.manual_seed(0)
    net = tr.build_network_architecture(tr.plans_manager, tr.configuration_manager, 1,
                                        tr.label_manager.num_segmentation_heads, False)
    names = pc.save_state(out, 'init', net.named_parameters())
    rng = np.random.default_rng(3)
    image = rng.standard_normal(SHAPE).astype(np.float32)
    pc.save(out, 'image', image)
    _, _, _, mirror_axes = tr.configure_rotation_dummyDA_mirroring_and_inital_patch_size()

    import nnunetv2.inference.predict_from_raw_data as pfrd
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    original_torch, original_gaussian = pfrd.torch, pfrd.compute_gaussian
    for accumulators in ('fp16', 'fp32'):
        if accumulators == 'fp32':
            pfrd.torch = _Float32Accumulators()
            pfrd.compute_gaussian = lambda *a, **k: original_gaussian(*a, **{**k, 'dtype': torch.float32})
        for mirror in ((False, True) if accumulators == 'fp32' else (False,)):
            with contextlib.redirect_stdout(io.StringIO()):
                pred = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror,
                                       perform_everything_on_device=True, device=torch.device('cpu'),
                                       verbose=False, allow_tqdm=False)
                pred.manual_initialization(net, tr.plans_manager, tr.configuration_manager, None, tr.dataset_json,
                                           'nnUNetTrainer', mirror_axes)
                logits = pred.predict_sliding_window_return_logits(torch.from_numpy(image))
            pc.save(out, f'logits_{accumulators}_{"mirror" if mirror else "nomirror"}', logits.float().numpy())
        pfrd.torch, pfrd.compute_gaussian = original_torch, original_gaussian
    pc.write_meta(out, {'nnunet': 'nnUNetPredictor.predict_sliding_window_return_logits', 'params': names,
                        'patch_size': list(PATCH), 'mirror_axes': [int(a) for a in mirror_axes],
                        'num_classes': int(tr.label_manager.num_segmentation_heads)})


if __name__ == '__main__':
    main()
