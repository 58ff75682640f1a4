#include "mlseg/core/atomic_file.h"

#include <unistd.h>

#include <atomic>
#include <fstream>

#include "mlseg/core/error.h"

namespace mlseg {
namespace fs = std::filesystem;

std::string full_extension(const fs::path& path) {
  const std::string name = path.filename().string();
  // Known double extensions first; otherwise the last one.
  for (const char* doubled : {".nii.gz", ".tar.gz"}) {
    const std::string ending = doubled;
    if (name.size() > ending.size() &&
        name.compare(name.size() - ending.size(), ending.size(), ending) == 0) {
      return ending;
    }
  }
  return path.extension().string();
}

AtomicOutput::AtomicOutput(fs::path target) : target_(std::move(target)) {
  static std::atomic<unsigned> counter{0};
  const std::string extension = full_extension(target_);
  std::string stem = target_.filename().string();
  stem = stem.substr(0, stem.size() - extension.size());
  const std::string unique =
      std::to_string(static_cast<long>(getpid())) + "-" + std::to_string(counter++);
  temp_ = target_.parent_path() / ("." + stem + ".tmp-" + unique + extension);
  std::error_code ignored;
  if (!target_.parent_path().empty()) fs::create_directories(target_.parent_path(), ignored);
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
  }
}

void AtomicOutput::commit() {
  std::error_code error;
  fs::rename(temp_, target_, error);
  if (error) {
    throw Error("could not move the finished file into place: " + error.message(),
                "check that the folder is writable and on a disk with free space",
                {target_.string(), "", ""});
  }
  committed_ = true;
}

int remove_stale_temporaries(const fs::path& folder) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos && entry.is_regular_file(ec)) {
      if (fs::remove(entry.path(), ec)) ++removed;
    }
  }
  return removed;
}

void write_text_file_atomically(const fs::path& path, const std::string& contents) {
  AtomicOutput output(path);
  {
    std::ofstream stream(output.temp_path(), std::ios::binary);
    stream << contents;
    stream.flush();
    if (!stream) {
      throw Error("could not write the file", "check that the folder is writable and the disk is not full",
                  {path.string(), "", ""});
    }
  }
  output.commit();
}

}  // namespace mlseg
