"""Parity (b): nnU-Net's DefaultPreprocessor.run_case on cases, with mlseg's plans.json unchanged
except image_reader_writer (NibabelIO: SimpleITK is not installed here).

  preprocess.py PLANS_JSON DATASET_JSON CONFIGURATION OUT CASE=SEG_FILE=IMAGE_FILE[,IMAGE_FILE...] ...

Writes data_<case>.npy (float32 [C, Z, Y, X]), seg_<case>.npy (int16, nnU-Net's label values with
-1 outside the nonzero mask) and, in meta.json per case, bbox_used_for_cropping,
shape_after_cropping_and_before_resampling and the data shape.

When the labels were resampled, also undecided_<case>.npy (uint8): the voxels where nnU-Net's
resize_segmentation rule (each label's linearly interpolated indicator, label kept where it reaches
0.5, larger label values last) has no unique answer: no label reaches 0.5 (nnU-Net writes 0 there)
or two labels reach exactly 0.5 (the larger wins). mlseg takes the label of largest weight there
(ties: the smaller), on purpose. The indicators come from nnU-Net's own resample_data_or_seg_to_shape
(is_seg=False, order 1, order_z 0), i.e. what resize_segmentation thresholds.
"""
import json
import os
import sys

import parity_common as pc
import numpy as np


def nnunet_undecided_labels(images, seg_file, pm, cm, new_shape):
    from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero
    from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg_to_shape
    rw = pm.image_reader_writer_class()
    data, props = rw.read_images(images)
    seg, _ = rw.read_seg(seg_file)
    tf = pm.transpose_forward
    data = data.transpose([0, *[i + 1 for i in tf]])
    seg = seg.transpose([0, *[i + 1 for i in tf]])
    spacing = [props['spacing'][i] for i in tf]
    data, seg, _ = crop_to_nonzero(data, seg)
    if tuple(seg.shape[1:]) == tuple(new_shape):
        return None
    weights = []
    for c in np.unique(seg):
        weights.append(resample_data_or_seg_to_shape((seg == c).astype(float), new_shape, spacing, cm.spacing,
                                                     is_seg=False, order=1, order_z=0, force_separate_z=None)[0])
    weights = np.stack(weights)
    return (weights.max(0) < 0.5) | ((weights >= 0.5).sum(0) > 1)


def main():
    plans_file, dataset_json_file, configuration, out = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    plans = json.load(open(plans_file))
    plans['image_reader_writer'] = 'NibabelIO'
    dataset_json = json.load(open(dataset_json_file))
    pm = PlansManager(plans)
    cm = pm.get_configuration(configuration)
    cases = {}
    for spec in sys.argv[5:]:
        case, seg, images = spec.split('=', 2)
        data, seg_array, props = DefaultPreprocessor(verbose=False).run_case(images.split(','), seg, pm, cm,
                                                                            dataset_json)
        pc.save(out, 'data_' + case, data.astype(np.float32))
        pc.save(out, 'seg_' + case, seg_array.astype(np.int16))
        undecided = nnunet_undecided_labels(images.split(','), seg, pm, cm, data.shape[1:])
        if undecided is not None:
            pc.save(out, 'undecided_' + case, undecided.astype(np.uint8))
        cases[case] = {'bbox_used_for_cropping': [[int(v) for v in b] for b in props['bbox_used_for_cropping']],
                       'shape_after_cropping_and_before_resampling':
                           [int(v) for v in props['shape_after_cropping_and_before_resampling']],
                       'data_shape': list(data.shape),
                       'normalization_schemes': cm.normalization_schemes}
    pc.write_meta(out, {'nnunet': 'DefaultPreprocessor.run_case', 'cases': cases})


if __name__ == '__main__':
    main()
