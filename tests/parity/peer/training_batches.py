"""Parity (g): nnU-Net's training batches end to end, nnUNetTrainer.get_dataloaders (nnUNetDataLoader
with the training transforms of get_training_transforms: sampling, spatial and intensity
augmentation, mirroring, regions, deep supervision) on cases preprocessed by nnU-Net's own
DefaultPreprocessor.run_case with mlseg's plans.json.

  training_batches.py PLANS_JSON DATASET_JSON CONFIGURATION OUT BATCHES SEED CASE=SEG_FILE=IMAGE_FILE[,...] ...

The cases are written in nnU-Net's numpy dataset format (CASE.npz + CASE.pkl, unpacked to .npy as
the trainer does) under OUT/nnUNet_preprocessed; the trainer runs fold 'all' (every case trains)
with nnUNet_n_proc_DA=0 (its SingleThreadedAugmenter: the same transforms in this process), numpy's
and torch's global streams seeded with SEED. Per patch of BATCHES batches, written as .npy:
present [N, K] (uint8: the target's channel k has a voxel), fraction [N, K] (float64: its share of
the patch's voxels), image_mean / image_std [N, C] (float64: each image channel's mean and standard
deviation over the patch), with K the target's channels at full resolution (regions, or one-hot labels).
"""
import contextlib
import io
import json
import os
import sys

out = sys.argv[4]
for key, sub in (('nnUNet_raw', 'raw'), ('nnUNet_preprocessed', 'nnUNet_preprocessed'), ('nnUNet_results', 'results')):
    os.environ[key] = os.path.join(out, sub)
    os.makedirs(os.environ[key], exist_ok=True)
os.environ['nnUNet_n_proc_DA'] = '0'

import parity_common as pc  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'bench', 'parity'))
import nnunet_side  # noqa: E402  (patch_vendor_mismatch: the vendored acvl_utils' crop_and_pad_nd)


def main():
    plans_file, dataset_json_file, configuration = sys.argv[1:4]
    batches, seed = int(sys.argv[5]), int(sys.argv[6])
    import torch
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetNumpy
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    torch.set_num_threads(1)
    plans = json.load(open(plans_file))
    plans['image_reader_writer'] = 'NibabelIO'
    dataset_json = json.load(open(dataset_json_file))
    pm = PlansManager(plans)
    cm = pm.get_configuration(configuration)
    base = os.path.join(os.environ['nnUNet_preprocessed'], pm.dataset_name)
    folder = os.path.join(base, cm.data_identifier)
    os.makedirs(folder, exist_ok=True)
    for spec in sys.argv[7:]:
        case, seg, images = spec.split('=', 2)
        data, seg_array, props = DefaultPreprocessor(verbose=False).run_case(images.split(','), seg, pm, cm, dataset_json)
        nnUNetDatasetNumpy.save_case(data.astype(np.float32), seg_array.astype(np.int16), props, os.path.join(folder, case))
        np.save(os.path.join(folder, case + '.npy'), data.astype(np.float32))  # what unpack_dataset writes
        np.save(os.path.join(folder, case + '_seg.npy'), seg_array.astype(np.int16))
    json.dump(plans, open(os.path.join(base, 'plans.json'), 'w'))
    json.dump(dataset_json, open(os.path.join(base, 'dataset.json'), 'w'))

    nnunet_side.patch_vendor_mismatch()
    plans['continue_training'] = False
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = nnUNetTrainer(plans, configuration, 'all', dataset_json, device=torch.device('cpu'))
        trainer.print_to_log_file = lambda *a, **k: None
        trainer.initialize()
        np.random.seed(seed)
        torch.manual_seed(seed)
        loader, _ = trainer.get_dataloaders()
    present, fraction, image_mean, image_std = [], [], [], []
    for _ in range(batches):
        batch = next(loader)
        target = batch['target'][0] if isinstance(batch['target'], (list, tuple)) else batch['target']
        target = np.asarray(target)
        data = np.asarray(batch['data'], dtype=np.float64)
        if target.shape[1] == 1:  # labels (softmax): one-hot of the foreground labels, as the channels
            labels = trainer.label_manager.foreground_labels
            target = np.concatenate([target == lab for lab in labels], 1)
        positive = target > 0
        axes = tuple(range(2, target.ndim))
        present.append(positive.any(axis=axes))
        fraction.append(positive.mean(axis=axes))
        image_mean.append(data.mean(axis=axes))
        image_std.append(data.std(axis=axes))
    pc.save(out, 'present', np.concatenate(present).astype(np.uint8))
    pc.save(out, 'fraction', np.concatenate(fraction).astype(np.float64))
    pc.save(out, 'image_mean', np.concatenate(image_mean))
    pc.save(out, 'image_std', np.concatenate(image_std))
    pc.write_meta(out, {'nnunet': 'nnUNetTrainer.get_dataloaders (nnUNetDataLoader + get_training_transforms)',
                        'batch_size': int(trainer.batch_size), 'patch_size': [int(v) for v in cm.patch_size],
                        'regions': bool(trainer.label_manager.has_regions), 'batches': batches})


if __name__ == '__main__':
    main()
