"""Parity (c): nnU-Net's network, loss and one training step, from nnU-Net's own initial weights.

  network_loss.py regions|labels fp32|fp64 OUT

fp64 runs the same in double precision (network, data, loss): float32 gradients of this network
already differ by ~3e-4 (relative) between nnU-Net's own runs with 1 and 2 threads, so only float64
shows agreement at the 1e-4 the parity suite asks for. The initial weights are the same float32
values either way.

nnUNetTrainer.initialize() (seed 0) builds PlainConvUNet via get_network_from_plans with He init,
SGD (lr 1e-2, momentum 0.99, Nesterov, weight decay 3e-5) and DeepSupervisionWrapper(DC_and_BCE_loss)
for regions or DeepSupervisionWrapper(DC_and_CE_loss) for labels. The batch's targets come from
nnUNetTrainer.get_validation_transforms (regions + DownsampleSegForDSTransform). Then exactly the
steps of nnUNetTrainer.train_step on CPU: zero_grad, forward, loss, backward,
clip_grad_norm_(12), optimizer.step().

Writes: plans.json, init/<param>.npy (nnU-Net's initial weights, named_parameters), data.npy,
seg.npy, target_<k>.npy (nnU-Net's deep-supervision targets), output_<k>.npy (forward, train mode),
loss (meta.json), grad/<param>.npy (before clipping), grad_norm (meta), after/<param>.npy (after
the SGD step).
"""
import json
import os
import sys

import parity_common as pc
import numpy as np
import torch

PATCH = (32, 32, 32)
BATCH = 2
STEPS = 4  # fp64: SGD steps in all (the first checked on its own, then train_step three times)


def main():
    mode, precision, out = sys.argv[1], sys.argv[2], sys.argv[3]
    dtype = torch.float64 if precision == 'fp64' else torch.float32
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    use_regions = mode == 'regions'
    plans = pc._common.plans_dict(PATCH, batch_size=BATCH, n_stages=4, features=(16, 32, 64, 128))
    with open(os.path.join(out, 'plans.json'), 'w') as f:
        json.dump(plans, f, indent=1)
    torch.manual_seed(0)
    tr = pc.make_trainer(json.loads(json.dumps(plans)), use_regions)
    net = tr.network
    params = list(net.named_parameters())
    names = pc.save_state(out, 'init', params)
    net.to(dtype)

    rng = np.random.default_rng(1)
    data = rng.standard_normal((BATCH, 1) + PATCH).astype(np.float32)
    seg = np.stack([pc.blob_segmentation(PATCH, 10 + b)[None] for b in range(BATCH)])
    pc.save(out, 'data', data)
    pc.save(out, 'seg', seg)
    val_tf = tr.get_validation_transforms(tr._get_deep_supervision_scales(), is_cascaded=False,
                                          foreground_labels=tr.label_manager.foreground_labels,
                                          regions=tr.label_manager.foreground_regions if use_regions else None,
                                          ignore_label=None)
    targets = None
    for b in range(BATCH):
        o = val_tf(image=torch.from_numpy(data[b]).clone(), segmentation=torch.from_numpy(seg[b]).clone())
        s = o['segmentation']
        if targets is None:
            targets = [torch.empty((BATCH, *t.shape), dtype=t.dtype) for t in s]
        for k, t in enumerate(s):
            targets[k][b] = t
    for k, t in enumerate(targets):
        pc.save(out, f'target_{k}', t.numpy().astype(np.float32) if use_regions else t.numpy().astype(np.int64))
    if use_regions:
        targets = [t.to(dtype) for t in targets]

    tr.on_train_epoch_start()  # network.train(), PolyLR(0): lr 1e-2
    x = torch.from_numpy(data).to(dtype)
    tr.optimizer.zero_grad(set_to_none=True)
    output = net(x)
    for k, o in enumerate(output):
        pc.save(out, f'output_{k}', o.detach().double().numpy())
    loss = tr.loss(output, targets)
    loss.backward()
    no_grad = [n for n, p in params if p.grad is None]  # the heads of outputs of weight 0
    pc.save_state(out, 'grad', [(n, p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in params])
    grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
    tr.optimizer.step()
    pc.save_state(out, 'after', params)
    lrs = [tr.optimizer.param_groups[0]['lr']]
    if precision == 'fp64':
        # More steps on the same batch through nnUNetTrainer.train_step itself (zero_grad, forward,
        # loss, backward, clip_grad_norm_(12), SGD step with the momentum buffer of the steps
        # before), one per epoch so that PolyLR lowers the learning rate in between.
        batch = {'data': x, 'target': targets}
        for step in range(1, STEPS):
            tr.current_epoch = step
            tr.on_train_epoch_start()
            lrs.append(tr.optimizer.param_groups[0]['lr'])
            tr.train_step(batch)
        pc.save_state(out, 'after_steps', params)
    pc.write_meta(out, {'steps': STEPS if precision == 'fp64' else 1, 'lrs': lrs, 'nnunet': 'nnUNetTrainer.initialize + train_step', 'mode': mode, 'precision': precision, 'params': names, 'params_without_grad': no_grad,
                        'loss': float(loss.detach()), 'grad_norm': float(grad_norm),
                        'loss_class': type(tr.loss.loss).__name__, 'ds_weights': [float(w) for w in tr.loss.weight_factors],
                        'lr': lrs[0], 'num_outputs': len(output)})


if __name__ == '__main__':
    main()
