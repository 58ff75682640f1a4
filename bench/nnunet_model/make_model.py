"""An nnU-Net v2 trained-model folder for timing `mlseg predict -m` against nnU-Net's predictor
(bench/nnunet_model/run.sh), made by nnU-Net itself without a training run:

  python3 bench/nnunet_model/make_model.py RAW_DATASET OUT [default|resenc-m]

nnU-Net's DatasetFingerprintExtractor and planner (ExperimentPlanner, or nnUNetPlannerResEncM) plan
RAW_DATASET (a DatasetXXX_Name folder; NibabelIO); nnUNetTrainer is built from the 3d_fullres plans
and initialize()d (nnU-Net's initial weights, seed 0), every weight is perturbed (seed 1: no weight at
its initial value, so the prediction is not trivial) and the trainer's own save_checkpoint writes
fold_0/checkpoint_final.pth. Prints the model folder:
OUT/DatasetXXX_Name/nnUNetTrainer__<plans>__3d_fullres. The weights are untrained: the folder is for
timing and for comparing both sides' label maps, not for Dice.
"""
import contextlib
import io
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'parity', 'peer'))
import parity_common as pc  # noqa: E402  (puts ../shared/peers on the path, sets nnUNet_* folders)

import torch  # noqa: E402


def main():
    source, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    planner_name = sys.argv[3] if len(sys.argv) > 3 else 'default'
    name, dataset_json = pc.link_raw_dataset(source)

    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import DatasetFingerprintExtractor
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    from nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners import \
        nnUNetPlannerResEncM
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    planner_class = {'default': ExperimentPlanner, 'resenc-m': nnUNetPlannerResEncM}[planner_name]
    with contextlib.redirect_stdout(io.StringIO()):
        DatasetFingerprintExtractor(name, num_processes=2, verbose=False).run(overwrite_existing=False)
        planner = planner_class(name)
        planner.plan_experiment()
    plans_name = planner.plans_identifier
    preprocessed = os.path.join(os.environ['nnUNet_preprocessed'], name)
    plans = json.load(open(os.path.join(preprocessed, plans_name + '.json')))

    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        trainer_plans = json.loads(json.dumps(plans))
        trainer_plans['continue_training'] = False  # nnUNetTrainer.__init__ pops this key (2.8)
        tr = nnUNetTrainer(trainer_plans, '3d_fullres', 0, dataset_json, device=torch.device('cpu'))
        tr.print_to_log_file = lambda *a, **k: None
        pc._common.initialize_trainer(tr)
        tr.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, p in tr.network.named_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    model = os.path.join(out, name, 'nnUNetTrainer__%s__3d_fullres' % plans_name)
    os.makedirs(os.path.join(model, 'fold_0'), exist_ok=True)
    tr.save_checkpoint(os.path.join(model, 'fold_0', 'checkpoint_final.pth'))
    json.dump(plans, open(os.path.join(model, 'plans.json'), 'w'), indent=1)
    json.dump(dataset_json, open(os.path.join(model, 'dataset.json'), 'w'), indent=1)
    shutil.copy(os.path.join(preprocessed, 'dataset_fingerprint.json'), os.path.join(model, 'dataset_fingerprint.json'))
    print(model)


if __name__ == '__main__':
    main()
