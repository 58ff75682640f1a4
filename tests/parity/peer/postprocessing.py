"""Parity (#24): nnU-Net's determine_postprocessing on label-map predictions.

  postprocessing.py OUT

Six synthetic cases of 24 x 32 x 32 with labels 1 and 2: each reference is a block of label 1
holding a smaller block of label 2 (cases 0-2 hold a second, separate label-2 block); each
prediction is its reference plus a far label-1 speck (outside everything: only the
whole-foreground step removes it), a label-2 bridge leading from the block to a separate
label-1 speck (inside the foreground's largest component: only the per-label step removes it),
and in cases 3-5 a one-voxel label-2 speck inside the block (keeping label 2's largest component
would remove it, but also cases 0-2's true second block). Written as NIfTI with nibabel into
OUT/raw/Dataset990_PostPro/{imagesTr,labelsTr,dataset.json} and OUT/pred/.

nnunetv2.postprocessing.remove_connected_components.determine_postprocessing decides on them (its
connected components: acvl_utils' remove_all_but_largest_component, skimage's label with full
connectivity). Writes meta.json (the steps as [labels_or_regions, ...], nnU-Net's Dice before and
after per label and the foreground mean) and postprocessed/<case>.npy (its postprocessed label
maps, z-y-x).
"""
import json
import os
import sys

import parity_common as pc
import numpy as np

SHAPE = (24, 32, 32)
NAME = 'Dataset990_PostPro'


def case_arrays(i):
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[4:20, 6:26, 6:26] = 1
    ref[8:12, 10:14, 10:14] = 2
    if i < 3:
        ref[14:17, 18:21, 18:21] = 2
    pred = ref.copy()
    pred[0:2, 0:2, 0:2 + (i % 2)] = 1          # far label-1 speck
    pred[10, 26:28, 15] = 2                    # label-2 bridge out of the block...
    pred[10, 28:30, 15] = 1                    # ...to a label-1 speck
    if i >= 3:
        pred[16, 8, 8] = 2                     # one-voxel label-2 speck inside the block
    # a few boundary voxels wrong, so that Dice is not trivially 1
    pred[4, 6:6 + i + 1, 6] = 0
    return ref, pred


def write_nifti(path, zyx):
    import nibabel
    nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(zyx.transpose(2, 1, 0)), np.eye(4)), path)


def main():
    out = sys.argv[1]
    raw = os.path.join(out, 'raw', NAME)
    pred = os.path.join(out, 'pred')
    for folder in (os.path.join(raw, 'imagesTr'), os.path.join(raw, 'labelsTr'), pred):
        os.makedirs(folder, exist_ok=True)
    dataset_json = {'channel_names': {'0': 'img'}, 'labels': {'background': 0, 'a': 1, 'b': 2}, 'numTraining': 6,
                    'file_ending': '.nii.gz', 'name': NAME}
    with open(os.path.join(raw, 'dataset.json'), 'w') as f:
        json.dump(dataset_json, f, indent=1)
    cases = []
    for i in range(6):
        case = 'pp_%03d' % i
        cases.append(case)
        ref, prediction = case_arrays(i)
        write_nifti(os.path.join(raw, 'labelsTr', case + '.nii.gz'), ref)
        write_nifti(os.path.join(raw, 'imagesTr', case + '_0000.nii.gz'), ref.astype(np.float32))
        write_nifti(os.path.join(pred, case + '.nii.gz'), prediction)

    plans = pc._common.plans_dict((16, 16, 16), n_stages=3, features=(4, 8, 16))
    from nnunetv2.postprocessing.remove_connected_components import determine_postprocessing
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIO
    pp_fns, pp_kwargs = determine_postprocessing(pred, os.path.join(raw, 'labelsTr'), plans, dataset_json, num_processes=2,
                                                 keep_postprocessed_files=True)
    summary = json.load(open(os.path.join(pred, 'postprocessing.json')))
    steps = []
    for fn, kwargs in zip(pp_fns, pp_kwargs):
        assert fn.__name__ == 'remove_all_but_largest_component_from_segmentation', fn.__name__
        value = kwargs['labels_or_regions']
        steps.append(list(value) if isinstance(value, (list, tuple)) else int(value))

    def dice_of(part):
        return {k: v['Dice'] for k, v in summary[part]['mean'].items()}

    meta = {'cases': cases, 'steps': steps, 'dice_before': dice_of('input_folder'), 'dice_after': dice_of('postprocessed'),
            'foreground_before': summary['input_folder']['foreground_mean']['Dice'],
            'foreground_after': summary['postprocessed']['foreground_mean']['Dice']}
    rw = NibabelIO()
    for case in cases:
        seg, _ = rw.read_seg(os.path.join(pred, 'postprocessed', case + '.nii.gz'))
        pc.save(out, 'postprocessed/' + case, seg[0].astype(np.int64))
    pc.write_meta(out, meta)


if __name__ == '__main__':
    main()
