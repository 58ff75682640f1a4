"""nnU-Net v2's own prediction of one folder on the CPU, as bench/memory/predict_ct.sh measures it:

  nnunet_predict.py MODEL_FOLDER INPUT_DIR OUTPUT_DIR STEP_SIZE

nnUNetPredictor(tile_step_size=STEP_SIZE, use_gaussian=True, use_mirroring=False, device=cpu) with
fold 0, then predict_from_files_sequential: preprocessing, predict_sliding_window_return_logits
(float16 accumulators, as shipped) and export through
convert_predicted_logits_to_segmentation_with_correct_shape, in this one process. Torch threads =
cores, as nnUNetv2_predict on a CPU.
"""
import contextlib
import io
import os
import sys

import peer_compat  # noqa: F401  (the peers' torch._dynamo stand-in for torch 1.13, ../shared/peers/stubs)
import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor


def main():
    model, inp, out, step = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    torch.set_num_threads(os.cpu_count())
    os.makedirs(out, exist_ok=True)  # predict_from_files_sequential writes its arguments there first
    with contextlib.redirect_stdout(io.StringIO()):
        predictor = nnUNetPredictor(tile_step_size=step, use_gaussian=True, use_mirroring=False, perform_everything_on_device=False,
                                    device=torch.device('cpu'), verbose=False, verbose_preprocessing=False, allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(model, (0,), checkpoint_name='checkpoint_final.pth')
        predictor.predict_from_files_sequential(inp, out, save_probabilities=False, overwrite=True)


if __name__ == '__main__':
    main()
