"""Parity (e): nnU-Net's patch sampling, nnUNetDataLoader.get_bbox and its oversampling rule, on
locations mlseg's store holds (the same store on both sides).

  sampler.py OUT PATCH FINAL_PATCH BATCH OVERSAMPLE DRAWS CASE=Z,Y,X=LABEL:LOCATIONS.npy[+LABEL:...] ...

PATCH / FINAL_PATCH as z,y,x. LOCATIONS.npy: int [N, 3] (z, y, x) voxels of that label, as mlseg
stored them; nnU-Net's class_locations hold [N, 4] with a leading channel index, added here.
A nnUNetDataLoader (patch_size=PATCH, final_patch_size=FINAL_PATCH) is built on a stand-in
dataset (only its identifiers are read); get_bbox is then called DRAWS times per case with
force_fg True and DRAWS times with False (numpy's global RNG, seed 0).

meta.json: forced_slots (which samples of a batch _oversample_last_XX_percent forces), and per case
lbs/ubs (get_bbox's lower-corner bounds, recorded from its np.random.randint calls), the chosen class counts
of forced draws, the mean and std of the lower corner per axis for forced and random draws.
"""
import os
import sys

import parity_common as pc
import numpy as np


class _Identifiers:
    def __init__(self, ids):
        self.identifiers = ids


def main():
    out = sys.argv[1]
    patch = [int(v) for v in sys.argv[2].split(',')]
    final_patch = [int(v) for v in sys.argv[3].split(',')]
    batch, oversample, draws = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    os.makedirs(out, exist_ok=True)
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
    from nnunetv2.utilities.label_handling.label_handling import LabelManager
    cases = {}
    specs = []
    for spec in sys.argv[7:]:
        case, shape, groups = spec.split('=', 2)
        class_locations = {}
        for g in groups.split('+'):
            label, path = g.split(':', 1)
            loc = np.load(path).astype(np.int64)
            class_locations[int(label)] = np.concatenate([np.zeros((len(loc), 1), np.int64), loc], 1)
        specs.append((case, np.array([int(v) for v in shape.split(',')]), class_locations))
    labels = {'background': 0, **{f'label_{k}': k for k in sorted({k for s in specs for k in s[2]})}}
    lm = LabelManager(labels, regions_class_order=None)
    loader = nnUNetDataLoader(_Identifiers([s[0] for s in specs]), batch, patch, final_patch, lm,
                              oversample_foreground_percent=oversample)
    forced_slots = [bool(loader.get_do_oversample(j)) for j in range(batch)]
    # get_bbox does not return the class it chose: its first np.random.choice call of a forced draw
    # picks the index into the eligible classes (class_locations keys with locations, in order).
    # Record the calls, without changing them.
    real_choice = np.random.choice
    calls = []

    def recording_choice(a, *args, **kwargs):
        r = real_choice(a, *args, **kwargs)
        calls.append((a, r))
        return r

    real_randint = np.random.randint
    randint_calls = []

    def recording_randint(low, high=None, *args, **kwargs):
        randint_calls.append((low, high))
        return real_randint(low, high, *args, **kwargs)

    np.random.choice, np.random.randint = recording_choice, recording_randint
    np.random.seed(0)
    for case, shape, class_locations in specs:
        result = {}
        eligible = [k for k in class_locations if len(class_locations[k]) > 0]
        counts = {str(k): 0 for k in eligible}
        for force in (True, False):
            corners = []
            for _ in range(draws):
                calls.clear()
                lbs, ubs = loader.get_bbox(shape, force, class_locations)
                corners.append(lbs)
                if force:
                    counts[str(eligible[int(calls[0][1])])] += 1
            corners = np.array(corners)
            result['forced' if force else 'random'] = {'mean': corners.mean(0).tolist(), 'std': corners.std(0).tolist()}
        # the bounds: a random draw's np.random.randint(lbs[i], ubs[i] + 1) calls, recorded
        randint_calls.clear()
        loader.get_bbox(shape, False, class_locations)
        result['lbs'] = [int(c[0]) for c in randint_calls]
        result['ubs'] = [int(c[1]) - 1 for c in randint_calls]
        result['class_counts'] = counts
        cases[case] = result
    np.random.choice, np.random.randint = real_choice, real_randint
    pc.write_meta(out, {'nnunet': 'nnUNetDataLoader.get_bbox / get_do_oversample', 'forced_slots': forced_slots,
                        'draws': draws, 'cases': cases})


if __name__ == '__main__':
    main()
