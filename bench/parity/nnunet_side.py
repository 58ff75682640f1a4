#!/usr/bin/python3
"""nnU-Net v2 side of the equal-budget parity benchmark (bench/parity/run.sh).

Only glue: every measured step is the unmodified nnU-Net v2 code in ../shared/peers/vendor
(DatasetFingerprintExtractor, ExperimentPlanner, DefaultPreprocessor.run_case, nnUNetTrainer,
nnUNetPredictor inside perform_actual_validation). Run it with /usr/bin/python3 (Debian's torch
1.13.1) and PYTHONPATH=PEERS/stubs:PEERS/vendor (run.sh sets both).

  nnunet_side.py prepare --dataset-dir D --work W [--reduce SPEC]
      raw folder of symlinks (dataset.json copy with overwrite_image_reader_writer=NibabelIO),
      fingerprint, plan (nnU-Net's default ExperimentPlanner), optional CPU reduction of
      3d_fullres, preprocessing (DefaultPreprocessor.run_case per case) saved in nnU-Net's numpy
      dataset format (nnUNetDatasetNumpy: CASE.npz with data/seg + CASE.pkl; blosc2 is not
      available), unpacked to .npy as nnU-Net's trainer would, gt_segmentations, and nnU-Net's own
      seeded 5-fold split (generate_crossval_split, seed 12345) as splits_final.json.
  nnunet_side.py train --work W --fold F --epochs E --iters I --val-iters V
      nnUNetTrainer (subclassed only for num_epochs / num_iterations_per_epoch /
      num_val_iterations_per_epoch), run_training() then perform_actual_validation() as
      nnUNetv2_train does; writes W/nnunet/timing.json.

SPEC (--reduce, '' = keep nnU-Net's plan): semicolon-separated, e.g.
  "patch=64,64,64;features=16,32,64,128,256;batch=2"
patch: the 3d_fullres patch; features: features per stage (its length is n_stages; strides are
2 along an axis while it stays >= 8 before halving, kernels 3x3x3 as nnU-Net's planner gives for
isotropic spacing); batch: batch size. Each key is optional.
"""
import argparse
import json
import os
import shutil
import sys
import time


def env_setup(work):
    nn = os.path.join(work, 'nnunet')
    for k, sub in (('nnUNet_raw', 'raw'), ('nnUNet_preprocessed', 'preprocessed'), ('nnUNet_results', 'results')):
        os.environ[k] = os.path.join(nn, sub)
        os.makedirs(os.environ[k], exist_ok=True)
    os.environ.setdefault('nnUNet_def_n_proc', '2')
    os.environ.setdefault('nnUNet_n_proc_DA', '2')
    import peer_compat  # noqa: F401  torch._dynamo stand-in for torch 1.13 (../shared/peers/stubs)
    return nn


def patch_vendor_mismatch():
    """The vendored acvl_utils (e70301e7) is older than the one nnunetv2 2.8.1's data loader is written
    for, in two ways that matter here:
    1. nnUNetDataLoader.generate_train_batch passes crop_and_pad_nd(..., cast_cropped_to=np.int16), a
       keyword this version lacks (TypeError in every augmentation worker);
    2. this version returns a *view* of the input when the patch lies inside the image. With the
       numpy dataset format the input is a read-only np.load(mmap_mode='r') of the unpacked .npy, and
       the in-place augmentation then writes into the read-only mapping: a segfault in libtorch_cpu
       ("segfault ... error 7", BraTS, where 64^3 patches fit inside the image; Hippocampus's images
       are smaller than the patch, so it pads and copies). nnU-Net's normal blosc2 path always
       yields fresh arrays.
    The wrapper accepts the keyword and returns an owned, writable array of the requested dtype:
    the same values, which is what the newer acvl_utils returns."""
    import numpy as np
    import nnunetv2.training.dataloading.data_loader as dl
    original = getattr(dl.crop_and_pad_nd, '__wrapped__', dl.crop_and_pad_nd)

    def crop_and_pad_nd(image, bbox, pad_value=0, *args, cast_cropped_to=None, **kwargs):
        out = original(image, bbox, pad_value, *args, **kwargs)
        if isinstance(out, np.ndarray):
            dtype = out.dtype if cast_cropped_to is None else cast_cropped_to
            if not out.flags.writeable or not out.flags.owndata or out.dtype != dtype:
                out = np.array(out, dtype=dtype, copy=True)
        return out

    crop_and_pad_nd.__wrapped__ = original
    dl.crop_and_pad_nd = crop_and_pad_nd


def dataset_name_and_id(dataset_dir):
    name = os.path.basename(os.path.normpath(dataset_dir))
    if not (name.startswith('Dataset') and name[7:10].isdigit() and name[10:11] == '_'):
        sys.exit('nnunet_side: the dataset folder must be named DatasetXXX_Name (got %s)' % name)
    return name, int(name[7:10])


def reduce_plans(plans, spec):
    cfg = plans['configurations']['3d_fullres']
    items = dict(kv.split('=', 1) for kv in spec.replace(' ', '').split(';') if kv)
    unknown = set(items) - {'patch', 'features', 'batch'}
    if unknown:
        sys.exit('nnunet_side: unknown --reduce keys %s' % sorted(unknown))
    ak = cfg['architecture']['arch_kwargs']
    patch = [int(v) for v in items['patch'].split(',')] if 'patch' in items else list(cfg['patch_size'])
    features = [int(v) for v in items['features'].split(',')] if 'features' in items else list(ak['features_per_stage'])
    n = len(features)
    strides, kernels, size = [[1, 1, 1]], [[3, 3, 3]] * n, list(patch)
    for _ in range(1, n):
        s = [2 if size[a] >= 8 else 1 for a in range(3)]
        size = [size[a] // s[a] for a in range(3)]
        strides.append(s)
    for a in range(3):
        div = 1
        for s in strides:
            div *= s[a]
        if patch[a] % div:
            sys.exit('nnunet_side: patch axis %d (%d) is not divisible by %d' % (a, patch[a], div))
    if 'patch' in items or 'features' in items:
        cfg['patch_size'] = patch
        ak.update(n_stages=n, features_per_stage=features, kernel_sizes=kernels, strides=strides,
                  n_conv_per_stage=[2] * n, n_conv_per_stage_decoder=[2] * (n - 1))
    if 'batch' in items:
        cfg['batch_size'] = int(items['batch'])
    plans['parity_reduction'] = spec
    return plans


def cmd_prepare(a):
    nn = env_setup(a.work)
    name, did = dataset_name_and_id(a.dataset_dir)
    raw = os.path.join(os.environ['nnUNet_raw'], name)
    pre = os.path.join(os.environ['nnUNet_preprocessed'], name)
    for d in (raw, pre):
        if os.path.isdir(d):
            shutil.rmtree(d)
    os.makedirs(raw)
    src = os.path.abspath(a.dataset_dir)
    for sub in ('imagesTr', 'labelsTr'):
        os.symlink(os.path.join(src, sub), os.path.join(raw, sub))
    dj = json.load(open(os.path.join(src, 'dataset.json')))
    dj['overwrite_image_reader_writer'] = 'NibabelIO'  # SimpleITK is a stub here
    json.dump(dj, open(os.path.join(raw, 'dataset.json'), 'w'), indent=1)

    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset, \
        plan_experiment_dataset
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets
    from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetNumpy
    from nnunetv2.utilities.crossval_split import generate_crossval_split
    from nnunetv2.configuration import default_num_processes

    t0 = time.time()
    extract_fingerprint_dataset(did, num_processes=default_num_processes, clean=True, verbose=False,
                                show_progress_bar=False)
    t1 = time.time()
    plan_experiment_dataset(did, ExperimentPlanner)
    plans_file = os.path.join(pre, 'nnUNetPlans.json')
    plans = json.load(open(plans_file))
    shutil.copy(plans_file, os.path.join(pre, 'nnUNetPlans.original.json'))
    if a.reduce:
        plans = reduce_plans(plans, a.reduce)
        json.dump(plans, open(plans_file, 'w'), indent=1)
    t2 = time.time()

    pm = PlansManager(plans)
    cm = pm.get_configuration('3d_fullres')
    dataset_json = json.load(open(os.path.join(pre, 'dataset.json')))
    out = os.path.join(pre, cm.data_identifier)
    os.makedirs(out, exist_ok=True)
    gt = os.path.join(pre, 'gt_segmentations')
    os.makedirs(gt, exist_ok=True)
    cases = get_filenames_of_train_images_and_targets(raw, dataset_json)
    preprocessor = cm.preprocessor_class(verbose=False)
    for i, k in enumerate(sorted(cases)):
        data, seg, props = preprocessor.run_case(cases[k]['images'], cases[k]['label'], pm, cm, dataset_json)
        nnUNetDatasetNumpy.save_case(data.astype('float32', copy=False), seg.astype('int16', copy=False), props,
                                     os.path.join(out, k))
        shutil.copy(cases[k]['label'], os.path.join(gt, k + dataset_json['file_ending']))
        if (i + 1) % 20 == 0 or i + 1 == len(cases):
            print('  nnU-Net preprocess: %d/%d cases' % (i + 1, len(cases)), flush=True)
    nnUNetDatasetNumpy.unpack_dataset(out, overwrite_existing=False, num_processes=default_num_processes)
    t3 = time.time()
    splits = generate_crossval_split(sorted(cases), seed=12345, n_splits=5)
    json.dump(splits, open(os.path.join(pre, 'splits_final.json'), 'w'), indent=1)
    info = {'dataset': name, 'dataset_id': did, 'plans_file': plans_file, 'preprocessed': out,
            'reduce': a.reduce, 'seconds': {'fingerprint': t1 - t0, 'plan': t2 - t1, 'preprocess': t3 - t2}}
    json.dump(info, open(os.path.join(nn, 'prepare.json'), 'w'), indent=1)
    c = plans['configurations']['3d_fullres']
    print('nnU-Net plan (3d_fullres): patch %s, batch %d, features %s, strides %s' % (
        c['patch_size'], c['batch_size'], c['architecture']['arch_kwargs']['features_per_stage'],
        c['architecture']['arch_kwargs']['strides']))


def cmd_train(a):
    nn = env_setup(a.work)
    import torch
    torch.set_num_threads(a.threads)
    if a.seed is not None:
        # The main process's streams (initial weights, the split of work); nnU-Net's augmentation
        # workers draw their own seeds, so two runs with one seed still differ, as nnU-Net runs do.
        import random
        import numpy as np
        random.seed(a.seed)
        np.random.seed(a.seed % 2**32)
        torch.manual_seed(a.seed)
    info = json.load(open(os.path.join(nn, 'prepare.json')))
    pre = os.path.join(os.environ['nnUNet_preprocessed'], info['dataset'])
    plans = json.load(open(os.path.join(pre, 'nnUNetPlans.json')))
    dataset_json = json.load(open(os.path.join(pre, 'dataset.json')))
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    patch_vendor_mismatch()

    class nnUNetTrainerParity(nnUNetTrainer):
        """nnUNetTrainer with the run length set; nothing else changes."""

        def __init__(self, plans, configuration, fold, dataset_json, device=torch.device('cpu')):
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_epochs = a.epochs
            self.num_iterations_per_epoch = a.iters
            self.num_val_iterations_per_epoch = a.val_iters

    plans['continue_training'] = False  # as nnunetv2.run.run_training.get_trainer_from_args sets it
    t0 = time.time()
    trainer = nnUNetTrainerParity(plans, '3d_fullres', a.fold, dataset_json, device=torch.device('cpu'))
    trainer.run_training()
    t1 = time.time()
    trainer.perform_actual_validation(False)
    t2 = time.time()
    timing = {'train_s': t1 - t0, 'final_validation_s': t2 - t1, 'train_and_validation_s': t2 - t0,
              'epochs': a.epochs, 'iters_per_epoch': a.iters, 'val_iters_per_epoch': a.val_iters,
              'torch_threads': torch.get_num_threads(), 'nnUNet_n_proc_DA': os.environ['nnUNet_n_proc_DA'],
              'nnUNet_def_n_proc': os.environ['nnUNet_def_n_proc'], 'seed': a.seed,
              'output_folder': trainer.output_folder,
              'validation_folder': os.path.join(trainer.output_folder, 'validation'),
              'batch_size': trainer.batch_size, 'patch_size': list(trainer.configuration_manager.patch_size)}
    json.dump(timing, open(os.path.join(nn, 'timing.json'), 'w'), indent=1)
    print('nnU-Net: train %.1f s, final validation %.1f s' % (t1 - t0, t2 - t1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    pp = sub.add_parser('prepare')
    pp.add_argument('--dataset-dir', required=True)
    pp.add_argument('--work', required=True)
    pp.add_argument('--reduce', default='')
    pt = sub.add_parser('train')
    pt.add_argument('--work', required=True)
    pt.add_argument('--fold', type=int, default=0)
    pt.add_argument('--epochs', type=int, required=True)
    pt.add_argument('--iters', type=int, required=True)
    pt.add_argument('--val-iters', type=int, default=5)
    pt.add_argument('--threads', type=int, default=2)
    pt.add_argument('--seed', type=int, default=None)
    a = p.parse_args()
    {'prepare': cmd_prepare, 'train': cmd_train}[a.cmd](a)


if __name__ == '__main__':
    main()
