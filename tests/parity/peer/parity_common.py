"""Glue shared by the parity suite's peer scripts (tests/parity/*_test.cpp run them with Debian's
/usr/bin/python3). Every script computes one thing with nnU-Net v2's own, unmodified code from
../shared/peers/vendor and writes the inputs it used and nnU-Net's results as .npy files into an
output folder, with a meta.json; the C++ test computes the same with mlseg and compares.

Environment: MLSEG_PEERS_DIR (../shared/peers), PEERS_WORK (a writable temp folder for nnU-Net's
nnUNet_raw / nnUNet_preprocessed / nnUNet_results variables).
"""
import json
import os
import sys

PEERS = os.environ.get('MLSEG_PEERS_DIR') or os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'shared',
                                                         'peers')
for sub in ('bench', 'vendor', 'stubs'):
    path = os.path.join(PEERS, sub)
    if path not in sys.path:
        sys.path.insert(0, path)

import _common  # noqa: E402  (the kit's glue: plans_dict, dataset_json, setup_peers)

_common.setup_peers()

import numpy as np  # noqa: E402


def save(folder, name, array):
    """name may contain '/' (a sub-folder); arrays are written as they are (float32, float64, int64, ...)."""
    path = os.path.join(folder, name + '.npy')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.ascontiguousarray(array))


def save_state(folder, prefix, named_tensors):
    names = []
    for name, t in named_tensors:
        save(folder, prefix + '/' + name, t.detach().cpu().numpy())
        names.append(name)
    return names


def link_raw_dataset(source):
    """Links the raw dataset folder SOURCE (DatasetXXX_Name: imagesTr, labelsTr, dataset.json) into
    nnUNet_raw as nnU-Net's planners read it, with "overwrite_image_reader_writer": "NibabelIO"
    (SimpleITK is not installed here). Returns (name, dataset_json)."""
    import shutil
    name = os.path.basename(source.rstrip('/'))
    raw = os.path.join(os.environ['nnUNet_raw'], name)
    if os.path.exists(raw):
        shutil.rmtree(raw)
    os.makedirs(raw)
    for sub in ('imagesTr', 'labelsTr'):
        os.symlink(os.path.join(source, sub), os.path.join(raw, sub))
    dataset_json = json.load(open(os.path.join(source, 'dataset.json')))
    dataset_json['overwrite_image_reader_writer'] = 'NibabelIO'
    json.dump(dataset_json, open(os.path.join(raw, 'dataset.json'), 'w'), indent=1)
    return name, dataset_json


def write_meta(folder, meta):
    with open(os.path.join(folder, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1, default=float)


def make_trainer(plans, use_regions, device='cpu'):
    """The real nnUNetTrainer for a plans dict (3d_fullres), initialised (network with He init,
    SGD + PolyLR, loss with deep supervision) without a dataset, as ../shared/peers/bench does."""
    import contextlib
    import io
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    with contextlib.redirect_stdout(io.StringIO()):
        tr = nnUNetTrainer(plans, '3d_fullres', 0, _common.dataset_json(use_regions), device=torch.device(device))
    tr.print_to_log_file = lambda *a, **k: None
    with contextlib.redirect_stdout(io.StringIO()):
        _common.initialize_trainer(tr)
    return tr


def blob_segmentation(shape, seed, num_labels=3):
    """A label map 0..num_labels of nested smooth blobs (a random field thresholded at quantiles),
    so that regions (1,2,3) ⊃ (2,3) ⊃ (3,) are all present."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.standard_normal(shape), 3)
    qs = np.quantile(field, [0.55, 0.75, 0.9][:num_labels])
    seg = np.zeros(shape, np.int16)
    for i, q in enumerate(qs):
        seg[field > q] = i + 1
    return seg
