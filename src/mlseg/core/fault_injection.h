#pragma once
// Fault injection for the reliability tests (tests/fault/): MLSEG_FAULT=POINT[:N] makes this
// process kill itself with SIGKILL the N-th time (default 1st) it reaches fault_point(POINT), as a
// power cut or the OOM killer would. Unset (always, outside tests), a fault point costs one
// branch. Points: train_step (after backward, before the optimizer step), checkpoint_write (the
// new checkpoint fully written under its temporary name, not yet in place), validation (after the
// first validation batch), preprocess_case (after a case's files are written), predict_case (after
// a case's output is written).
namespace mlseg {

void fault_point(const char* point);

}  // namespace mlseg
