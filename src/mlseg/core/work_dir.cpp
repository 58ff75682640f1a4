#include "mlseg/core/work_dir.h"

#include <cstdlib>

namespace mlseg {

std::filesystem::path resolve_work_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("MLSEG_WORK"); env && *env) return env;
  return kDefaultWorkDir;
}

std::filesystem::path dataset_work_dir(const std::filesystem::path& work_dir, const std::string& dataset_name) {
  return work_dir / dataset_name;
}

}  // namespace mlseg
