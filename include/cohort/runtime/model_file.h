// The model file: a trained model on disk, to start another run from (`model.init`).
//
// `cohort simulate` (every item of `cohort compare`) and `cohort serve` write the final global
// model as OUT/model.cohort at the end of a run. The file is a checkpoint file
// (docs/checkpoint_format.md) holding only the `model` array, so a server's checkpoint.cohort
// is a model file too. `model.init: PATH` starts a run from one: the way to continue training,
// or to compare methods from one pretrained model as DiLoCo's paper does.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/trainer/trainer.h"

namespace cohort {

// The model file's name in a run's output directory.
inline constexpr const char* kModelFile = "model.cohort";

// Writes `model` to `path` atomically (temporary file, fsync, rename), recording the strategy
// that trained it and its version. Internal on I/O errors naming the path.
Status write_model_file(const std::string& path, const ArrayRecord& model,
                        const std::string& strategy, ModelVersion version);

// Reads the `model` array of a model file or a server checkpoint. NotFound when the file is
// absent; DataLoss naming the file for a corrupt one (read_checkpoint_file's checks) or one
// without a model.
Result<ArrayRecord> read_model_file(const std::string& path);

// A run's initial model: the trainer's seeded initialisation when `init_path` is empty, else
// the model read from `init_path`, which must have the trainer's layout (the same arrays, in
// order, with the same shapes) and finite values. InvalidArgument naming `model.init`, the file
// and the first difference ("array 'fc1.weight' has shape [200,784], expected [100,784]",
// ArrayRecord::check_same_layout), or the read's error prefixed with `model.init`.
Result<ArrayRecord> initial_model(Trainer& trainer, const std::string& init_path, uint64_t seed);

}  // namespace cohort
