"""An nnU-Net v2 checkpoint written by nnU-Net's own nnUNetTrainer.save_checkpoint, for mlseg's
reader of torch.save files (issue #19).

  nnunet_checkpoint.py regions|labels OUT

nnUNetTrainer.initialize() (seed 0) builds PlainConvUNet with He init; one real SGD step (so the
optimizer state has momentum buffers) and then seeded perturbations of every parameter (so that
InstanceNorm's weights and biases are not the 1s and 0s of initialisation). The logger holds numpy
float64 values and _best_ema is a numpy scalar, as after real epochs. save_checkpoint writes
OUT/checkpoint_final.pth with torch.save (zip format).

Writes: checkpoint_final.pth, plans.json, weights/<name>.npy (the state dict without nnU-Net's
duplicate keys, decoder.encoder.* and *.all_modules.*), input.npy and output.npy (forward in eval
mode without deep supervision, float64 weights and input), meta.json (names in state dict order,
the duplicate keys dropped, trainer name, mirroring axes, configuration, current_epoch).
"""
import json
import os
import sys

import parity_common as pc
import numpy as np
import torch

PATCH = (32, 32, 32)
BATCH = 2


def main():
    mode, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    use_regions = mode == 'regions'
    plans = pc._common.plans_dict(PATCH, batch_size=BATCH, n_stages=4, features=(8, 16, 32, 64))
    with open(os.path.join(out, 'plans.json'), 'w') as f:
        json.dump(plans, f, indent=1)
    torch.manual_seed(0)
    tr = pc.make_trainer(json.loads(json.dumps(plans)), use_regions)
    net = tr.network

    # One SGD step on a random batch, so that optimizer_state has momentum buffers.
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((BATCH, 1) + PATCH).astype(np.float32))
    tr.on_train_epoch_start()
    tr.optimizer.zero_grad(set_to_none=True)
    sum(o.square().mean() for o in net(x)).backward()
    tr.optimizer.step()
    # Seeded perturbations: no parameter keeps its initial value.
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _, p in net.named_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    for epoch in range(3):
        tr.logger.log('mean_fg_dice', np.float64(0.25 * epoch), epoch)
        tr.logger.log('dice_per_class_or_region', [np.float64(0.1), np.float64(0.3)], epoch)
        tr.logger.log('train_losses', np.float64(-0.1 * epoch), epoch)
        tr.logger.log('val_losses', np.float64(-0.05 * epoch), epoch)
        tr.logger.log('epoch_start_timestamps', 1.0 + epoch, epoch)
        tr.logger.log('epoch_end_timestamps', 2.0 + epoch, epoch)
    # Sets inference_allowed_mirroring_axes, as get_dataloaders (which needs a dataset) does.
    tr.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    tr._best_ema = np.float64(0.4)
    tr.current_epoch = 2
    tr.save_checkpoint(os.path.join(out, 'checkpoint_final.pth'))

    state = net.state_dict()
    dropped = [k for k in state if k.startswith('decoder.encoder.') or '.all_modules.' in k]
    kept = [(k, v) for k, v in state.items() if k not in dropped]
    names = pc.save_state(out, 'weights', kept)

    net.eval()
    net.decoder.deep_supervision = False
    net.double()
    data = rng.standard_normal((1, 1) + PATCH)
    with torch.no_grad():
        output = net(torch.from_numpy(data))
    pc.save(out, 'input', data)
    pc.save(out, 'output', output.numpy())
    pc.write_meta(out, {'nnunet': 'nnUNetTrainer.save_checkpoint', 'mode': mode, 'names': names, 'dropped': dropped,
                        'trainer_name': type(tr).__name__,
                        'mirroring_axes': list(tr.inference_allowed_mirroring_axes)
                        if tr.inference_allowed_mirroring_axes is not None else None,
                        'configuration': tr.configuration_name, 'current_epoch': tr.current_epoch + 1,
                        'num_outputs': int(output.shape[1])})


if __name__ == '__main__':
    main()
