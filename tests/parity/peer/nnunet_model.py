"""An nnU-Net v2 model folder and nnUNetPredictor's predictions with it, for `mlseg predict -m`
(issue #19).

  nnunet_model.py labels|regions|resenc OUT IMAGE_0000.nii.gz [IMAGE_0000.nii.gz ...]

The model folder OUT/model/Dataset999_PeerBench/nnUNetTrainer__nnUNetPlans__3d_fullres holds what
nnU-Net writes: plans.json (PlainConvUNet, 4 stages, features 8-64, patch 32^3, target spacing
1.2 x 0.9 x 1.1 mm, so images are resampled on the way in and the predictions on the way back),
dataset.json (Hippocampus labels anterior 1, posterior 2; or the regions hippocampus = (1, 2) and
posterior = (2,) with regions_class_order (1, 2)); resenc: the labels with the network of nnU-Net's
ResEnc M preset (nnUNetPlannerResEncM's architecture entry: ResidualEncoderUNet, BasicBlockD blocks
1, 3, 4, 6, one conv per decoder stage; folder nnUNetTrainer__nnUNetResEncUNetMPlans__3d_fullres),
and fold_0, fold_1 checkpoint_final.pth written by
nnUNetTrainer.save_checkpoint from nnUNetTrainer.initialize() (seed 0) with seeded perturbations
(seed 100 + fold), so the folds differ and no weight is at its initial value.

nnUNetPredictor.initialize_from_trained_model_folder + predict_from_files_sequential (NibabelIO,
step 0.5, Gaussian, save_probabilities) predicts the images for folds (0,) and (0, 1), with and
without mirroring. nnU-Net accumulates the sliding window in float16 (predict_from_raw_data.py:
619-623); as in sliding_window.py, torch.half and compute_gaussian's dtype are made float32 in that
module's namespace (the only change), so that probabilities can be compared at 1e-4.

Writes OUT/input (links to the images), OUT/model/..., OUT/pred_<folds>_<mirror|nomirror>/CASE.nii.gz
(nnU-Net's segmentation) and CASE_probabilities.npy (from its .npz), meta.json.
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
SPACING = [1.2, 0.9, 1.1]
FOLDS = (0, 1)


class _Float32Accumulators:
    """torch, except that torch.half is float32."""
    half = torch.float32

    def __getattr__(self, name):
        return getattr(torch, name)


def dataset_json(mode):
    if mode == 'regions':
        labels = {'background': 0, 'hippocampus': [1, 2], 'posterior': 2}
        return {'channel_names': {'0': 'MRI'}, 'labels': labels, 'regions_class_order': [1, 2], 'numTraining': 2,
                'file_ending': '.nii.gz'}
    return {'channel_names': {'0': 'MRI'}, 'labels': {'background': 0, 'anterior': 1, 'posterior': 2}, 'numTraining': 2,
            'file_ending': '.nii.gz'}


def main():
    mode, out, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    plans = pc._common.plans_dict(PATCH, batch_size=2, n_stages=4, features=(8, 16, 32, 64))
    plans['configurations']['3d_fullres']['spacing'] = SPACING
    plans['image_reader_writer'] = 'NibabelIO'
    # Read by the preprocessor for every channel (used by CT normalisation only).
    plans['foreground_intensity_properties_per_channel'] = {'0': {
        'max': 486420.0, 'mean': 22360.0, 'median': 362.0, 'min': 0.0, 'percentile_00_5': 28.0,
        'percentile_99_5': 277681.0, 'std': 60656.0}}
    plans_name = 'nnUNetPlans'
    if mode == 'resenc':
        plans_name = 'nnUNetResEncUNetMPlans'
        plans['plans_name'] = plans_name
        plans['experiment_planner_used'] = 'nnUNetPlannerResEncM'
        arch = plans['configurations']['3d_fullres']['architecture']
        arch['network_class_name'] = 'dynamic_network_architectures.architectures.unet.ResidualEncoderUNet'
        kwargs = arch['arch_kwargs']
        del kwargs['n_conv_per_stage']
        kwargs['n_blocks_per_stage'] = [1, 3, 4, 6][:kwargs['n_stages']]
        kwargs['n_conv_per_stage_decoder'] = [1] * (kwargs['n_stages'] - 1)
    ds = dataset_json(mode)
    model = os.path.join(out, 'model', pc._common.DATASET_NAME, 'nnUNetTrainer__%s__3d_fullres' % plans_name)
    os.makedirs(model, exist_ok=True)
    with open(os.path.join(model, 'plans.json'), 'w') as f:
        json.dump({k: v for k, v in plans.items() if k != 'continue_training'}, f, indent=1)
    with open(os.path.join(model, 'dataset.json'), 'w') as f:
        json.dump(ds, f, indent=1)

    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        tr = nnUNetTrainer(json.loads(json.dumps(plans)), '3d_fullres', 0, ds, device=torch.device('cpu'))
        tr.print_to_log_file = lambda *a, **k: None
        pc._common.initialize_trainer(tr)
        tr.configure_rotation_dummyDA_mirroring_and_inital_patch_size()  # sets inference_allowed_mirroring_axes
    initial = {k: v.clone() for k, v in tr.network.state_dict().items()}
    for fold in FOLDS:
        tr.network.load_state_dict(initial)
        g = torch.Generator().manual_seed(100 + fold)
        with torch.no_grad():
            for _, p in tr.network.named_parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        os.makedirs(os.path.join(model, f'fold_{fold}'), exist_ok=True)
        tr.save_checkpoint(os.path.join(model, f'fold_{fold}', 'checkpoint_final.pth'))

    inp = os.path.join(out, 'input')
    os.makedirs(inp, exist_ok=True)
    cases = []
    for image in images:
        link = os.path.join(inp, os.path.basename(image))
        if not os.path.exists(link):
            os.symlink(os.path.abspath(image), link)
        cases.append(os.path.basename(image)[:-len('_0000.nii.gz')])

    import nnunetv2.inference.predict_from_raw_data as pfrd
    original_gaussian = pfrd.compute_gaussian
    pfrd.torch = _Float32Accumulators()
    def gaussian_float32(*a, **k):
        return original_gaussian(*a, **{**k, 'dtype': torch.float32})
    gaussian_float32.cache_clear = original_gaussian.cache_clear  # predict_from_files_sequential calls it
    pfrd.compute_gaussian = gaussian_float32
    runs = []
    for folds in ((0,), FOLDS):
        for mirror in (False, True):
            tag = 'pred_%s_%s' % (''.join(map(str, folds)), 'mirror' if mirror else 'nomirror')
            dest = os.path.join(out, tag)
            os.makedirs(dest, exist_ok=True)
            with contextlib.redirect_stdout(io.StringIO()):
                predictor = pfrd.nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror,
                                                 perform_everything_on_device=False, device=torch.device('cpu'),
                                                 verbose=False, allow_tqdm=False)
                predictor.initialize_from_trained_model_folder(model, use_folds=folds,
                                                               checkpoint_name='checkpoint_final.pth')
                predictor.predict_from_files_sequential(inp, dest, save_probabilities=True, overwrite=True)
            for case in cases:
                probabilities = np.load(os.path.join(dest, case + '.npz'))['probabilities']
                np.save(os.path.join(dest, case + '_probabilities.npy'), probabilities.astype(np.float32))
            runs.append({'folder': tag, 'folds': list(folds), 'mirror': mirror})
    pc.write_meta(out, {'nnunet': 'nnUNetPredictor.initialize_from_trained_model_folder + predict_from_files_sequential',
                        'mode': mode, 'model': model, 'network_class_name':
                            plans['configurations']['3d_fullres']['architecture']['network_class_name'], 'cases': cases, 'runs': runs,
                        'mirroring_axes': list(tr.inference_allowed_mirroring_axes)})


if __name__ == '__main__':
    main()
