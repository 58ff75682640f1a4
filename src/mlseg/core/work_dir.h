#pragma once
// The work folder (ARCHITECTURE.md "Conventions"): --work-dir DIR, else $MLSEG_WORK, else ./mlseg_work.
//   WORK/<dataset>/analysis/{fingerprint.json,labels.json}
//   WORK/<dataset>/splits_final.json
//   WORK/<dataset>/plans.json, preprocessed/<config>/, results/<config>/fold_<k>/
#include <filesystem>
#include <string>

namespace mlseg {

/// Default work folder when neither --work-dir nor $MLSEG_WORK is given.
inline constexpr const char* kDefaultWorkDir = "mlseg_work";

/// `flag` if non-empty, else $MLSEG_WORK if set, else ./mlseg_work.
std::filesystem::path resolve_work_dir(const std::string& flag);

/// WORK/<dataset name>.
std::filesystem::path dataset_work_dir(const std::filesystem::path& work_dir, const std::string& dataset_name);

}  // namespace mlseg
