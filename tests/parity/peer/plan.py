"""Parity (a): nnU-Net's fingerprint and plans for a raw dataset.

  plan.py DATASET_DIR OUT

DatasetFingerprintExtractor (2 processes) then ExperimentPlanner (nnU-Net's default planner, 8 GB
target, nnUNetPlans) and the Residual Encoder presets nnUNetPlannerResEncM/L/XL (their own targets,
8/24/40 GB; nnUNetResEncUNet{M,L,XL}Plans) on DATASET_DIR, linked into a temporary nnUNet_raw as it is (its folder name
must be DatasetXXX_Name). dataset.json gets "overwrite_image_reader_writer": "NibabelIO" in the
link folder (SimpleITK is not installed here). Writes OUT/dataset_fingerprint.json,
OUT/nnUNetPlans.json and OUT/nnUNetResEncUNet{M,L,XL}Plans.json as nnU-Net wrote them, and meta.json.
"""
import contextlib
import io
import os
import shutil
import sys

import parity_common as pc


def main():
    source, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    name, dataset_json = pc.link_raw_dataset(source)

    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import DatasetFingerprintExtractor
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    from nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners import (
        nnUNetPlannerResEncL, nnUNetPlannerResEncM, nnUNetPlannerResEncXL)
    with contextlib.redirect_stdout(io.StringIO()):
        DatasetFingerprintExtractor(name, num_processes=2, verbose=False).run(overwrite_existing=True)
        planner = ExperimentPlanner(name, gpu_memory_target_in_gb=8)
        planner.plan_experiment()
        for preset in (nnUNetPlannerResEncM, nnUNetPlannerResEncL, nnUNetPlannerResEncXL):
            preset(name).plan_experiment()
    preprocessed = os.path.join(os.environ['nnUNet_preprocessed'], name)
    for f in ('dataset_fingerprint.json', 'nnUNetPlans.json', 'nnUNetResEncUNetMPlans.json', 'nnUNetResEncUNetLPlans.json',
              'nnUNetResEncUNetXLPlans.json'):
        shutil.copy(os.path.join(preprocessed, f), os.path.join(out, f))
    pc.write_meta(out, {'nnunet': 'DatasetFingerprintExtractor.run + ExperimentPlanner / nnUNetPlannerResEncM/L/XL.plan_experiment',
                        'dataset': name})


if __name__ == '__main__':
    main()
