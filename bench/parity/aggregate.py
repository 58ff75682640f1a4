#!/usr/bin/env python3
"""Mean and spread over repeated bench/parity runs (issue #18).

    python3 bench/parity/aggregate.py WORK [WORK ...] [--json OUT]

Each WORK is the folder of one `bench/parity/run.sh` run (its results/results.json). Runs are grouped by
dataset, fold, iteration count, patch, batch and features; within a group each side (nnunet,
mlseg_default, ...) gets, per class, the mean over runs of its mean Dice over the validation cases,
the sample standard deviation over runs, the per-run values, and its mean wall time split into
training and final validation (nnU-Net: its own clock; mlseg: the sum of its epochs' seconds from
log.jsonl, the rest of the wall time being start-up and final validation). The goal check of the
issue is printed per class: mlseg mean >= nnU-Net mean - 0.01, and mlseg wall time <= nnU-Net's.

With two or more runs per side, each class also gets the difference of the means (mlseg - nnU-Net)
with a 95 % bootstrap interval (10,000 resamples of each side's runs, fixed seed), the exact
two-sided permutation p-value of that difference (every split of the pooled runs), and how many
runs per side end with the class missing (Dice < 0.01) with Fisher's exact two-sided p: whether a
gap is larger than the spread between runs of one side.
"""
import argparse
import itertools
import json
import math
import os
import random
import statistics

MISSING_DICE = 0.01  # a run "ends without the class" below this mean Dice


def bootstrap_interval(a, b, resamples=10000, seed=0):
    """95 % percentile interval of mean(a) - mean(b), resampling each side's runs with replacement."""
    rng = random.Random(seed)
    diffs = sorted(statistics.fmean(rng.choices(a, k=len(a))) - statistics.fmean(rng.choices(b, k=len(b)))
                   for _ in range(resamples))
    return diffs[int(0.025 * resamples)], diffs[int(0.975 * resamples) - 1]


def permutation_p(a, b, limit=200000):
    """Exact two-sided p of |mean(a) - mean(b)| over every split of the pooled runs (None when there
    are more than `limit` splits)."""
    pooled, n = a + b, len(a)
    if math.comb(len(pooled), n) > limit:
        return None
    observed = abs(statistics.fmean(a) - statistics.fmean(b)) - 1e-12
    total = sum(pooled)
    hits = count = 0
    for chosen in itertools.combinations(range(len(pooled)), n):
        sa = sum(pooled[i] for i in chosen)
        d = abs(sa / n - (total - sa) / len(b))
        hits += d >= observed
        count += 1
    return hits / count


def fisher_p(k1, n1, k2, n2):
    """Fisher's exact two-sided p for k1 of n1 against k2 of n2."""
    k, n = k1 + k2, n1 + n2

    def prob(x):
        return math.comb(n1, x) * math.comb(n2, k - x) / math.comb(n, k)

    p_obs = prob(k1)
    return min(1.0, sum(prob(x) for x in range(max(0, k - n2), min(k, n1) + 1) if prob(x) <= p_obs * (1 + 1e-9)))


def mlseg_train_seconds(work, dataset, fold, row):
    """Sum of epoch_seconds in the fold's log.jsonl of an mlseg row, or None."""
    variant = row[len('mlseg_'):]
    base = os.path.join(work, 'mlseg' if variant == 'default' else 'mlseg_' + variant)
    log = os.path.join(base, dataset, 'results', '3d_fullres', 'fold_%d' % fold, 'log.jsonl')
    if not os.path.exists(log):
        return None
    total = 0.0
    for line in open(log):
        line = line.strip()
        if line:
            total += json.loads(line).get('epoch_seconds', 0.0)
    return total


def fmt(v, digits=4):
    return 'n/a' if v is None or (isinstance(v, float) and math.isnan(v)) else '%.*f' % (digits, v)


def versus_nnunet(side, channel, ours, theirs):
    """Adds ours['versus_nnunet'] (difference of means, its 95 % bootstrap interval, permutation p, runs
    without the class and Fisher's p) and prints it; nothing with fewer than two runs per side."""
    mv, nv = ours['runs'], theirs['runs']
    if len(mv) < 2 or len(nv) < 2:
        return
    low, high = bootstrap_interval(mv, nv)
    perm = permutation_p(mv, nv)
    miss_m, miss_n = sum(v < MISSING_DICE for v in mv), sum(v < MISSING_DICE for v in nv)
    stats = {'difference': statistics.fmean(mv) - statistics.fmean(nv), 'interval95': [low, high], 'permutation_p': perm,
             'runs_missing': {side: miss_m, 'nnunet': miss_n}, 'fisher_p_missing': fisher_p(miss_m, len(mv), miss_n, len(nv))}
    ours['versus_nnunet'] = stats
    print('  %-18s %+.3f [95%% %+.3f, %+.3f], permutation p %s; runs without it: %d of %d vs %d of %d (Fisher p %.2f)'
          % (channel, stats['difference'], low, high, fmt(perm, 2), miss_m, len(mv), miss_n, len(nv), stats['fisher_p_missing']))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('works', nargs='+')
    p.add_argument('--json', help='write the aggregate here')
    a = p.parse_args()

    groups = {}
    for work in a.works:
        path = os.path.join(work, 'results', 'results.json')
        if not os.path.exists(path):
            print('skipped %s: no results/results.json (run unfinished?)' % work)
            continue
        r = json.load(open(path))
        key = (r['dataset'], r['fold'], r['iterations'], tuple(r['patch_size']), r['batch_size'],
               tuple(r['features_per_stage']))
        groups.setdefault(key, []).append((work, r))

    out = []
    for key, runs in groups.items():
        dataset, fold, iterations, patch, batch, features = key
        first = runs[0][1]
        print('\n%s, fold %d: %d training iterations per side (%d x %d), patch %s, batch %d, features %s; %d run(s), seeds %s'
              % (dataset, fold, iterations, first['epochs'], first['iters_per_epoch'], 'x'.join(map(str, patch)),
                 batch, list(features), len(runs), ', '.join(str(r.get('seed', '?')) for _, r in runs)))
        print('CPU: %s, %d cores, avx512_bf16: %s' % (first['cpu_model'], first['cores'],
                                                     'yes' if first['avx512_bf16'] else 'no'))
        sides = []
        for _, r in runs:
            sides += [s for s in r['rows'] if s not in sides]
        channels = []
        for _, r in runs:
            for s in r['rows'].values():
                channels += [c for c in s.get('dice_mean', {}) if c not in channels]
        summary = {'dataset': dataset, 'fold': fold, 'iterations': iterations, 'patch_size': list(patch),
                   'batch_size': batch, 'features_per_stage': list(features), 'cpu_model': first['cpu_model'],
                   'avx512_bf16': first['avx512_bf16'], 'runs': [w for w, _ in runs], 'sides': {}}
        print('Dice: mean over runs of the mean over validation cases, +- sample sd over runs [per run]')
        print('%-16s' % 'side' + ''.join('%-34s' % c for c in channels) + 'wall s (train + rest)   other CPU s')
        for side in sides:
            s_out = {'dice': {}, 'wall_s': None}
            cells = ''
            for c in channels:
                vals = [r['rows'][side]['dice_mean'][c] for _, r in runs
                        if side in r['rows'] and r['rows'][side].get('dice_mean', {}).get(c) is not None]
                mean = statistics.fmean(vals) if vals else None
                sd = statistics.stdev(vals) if len(vals) > 1 else None
                s_out['dice'][c] = {'mean': mean, 'sd': sd, 'runs': vals}
                cells += '%-34s' % ('%s +- %s [%s]' % (fmt(mean, 3), fmt(sd, 3), ' '.join(fmt(v, 2) for v in vals)))
            walls, trains, foreign = [], [], []
            for work, r in runs:
                row = r['rows'].get(side, {})
                t = row.get('timing')
                if not t:
                    continue
                walls.append(t['wall_s'])
                foreign.append(t['foreign_cpu_s'])
                if side == 'nnunet':
                    tr = row.get('nnunet_internal_seconds', {}).get('train_s')
                else:
                    tr = mlseg_train_seconds(work, dataset, fold, side)
                if tr is not None:
                    trains.append(tr)
            wall = statistics.fmean(walls) if walls else None
            train = statistics.fmean(trains) if len(trains) == len(walls) and trains else None
            s_out.update({'wall_s': wall, 'train_s': train, 'wall_runs': walls, 'foreign_cpu_s': foreign})
            summary['sides'][side] = s_out
            print('%-16s' % side + cells + '%-23s %s' % (
                '%s (%s + %s)' % (fmt(wall, 0), fmt(train, 0), fmt(None if train is None else wall - train, 0)),
                ' '.join(fmt(v, 0) for v in foreign)))
        nn = summary['sides'].get('nnunet')
        for side in sides:
            if side == 'nnunet' or not nn:
                continue
            m = summary['sides'][side]
            checks = []
            for c in channels:
                mv, nv = m['dice'][c]['mean'], nn['dice'][c]['mean']
                ok = mv is not None and nv is not None and mv >= nv - 0.01
                checks.append('%s %s (%+.3f)' % (c, 'met' if ok else 'NOT met',
                                                 (mv - nv) if mv is not None and nv is not None else float('nan')))
            speed = ''
            if m['wall_s'] and nn['wall_s']:
                speed = '; wall time %s (%.2fx nnU-Net\'s)' % ('met' if m['wall_s'] <= nn['wall_s'] else 'NOT met',
                                                              m['wall_s'] / nn['wall_s'])
            print('goal for %s: Dice >= nnU-Net - 0.01: %s%s' % (side, ', '.join(checks), speed))
            for c in channels:
                versus_nnunet(side, c, m['dice'][c], nn['dice'][c])
        if any(v > 60 for s in summary['sides'].values() for v in s['foreign_cpu_s']):
            print('WARNING: other processes used the CPU during some timed runs (other CPU s): wall times are not clean')
        out.append(summary)
    if a.json:
        json.dump(out, open(a.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
