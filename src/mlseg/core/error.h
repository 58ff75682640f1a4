#pragma once
// mlseg::Error: an error a user can act on — what went wrong, where, and what to do.
#include <stdexcept>
#include <string>

namespace mlseg {

/// Where a problem was found. Every field is optional; empty fields are not printed.
struct ErrorLocation {
  std::string file;
  std::string case_id;
  std::string channel;
};

class Error : public std::runtime_error {
 public:
  /// `problem`: what is wrong, in the user's terms. `fix`: what the user should do about it.
  Error(std::string problem, std::string fix, ErrorLocation where = {});

  const std::string& problem() const { return problem_; }
  const std::string& fix() const { return fix_; }
  const ErrorLocation& where() const { return where_; }

  /// Returns a copy with `file`/`case_id`/`channel` filled in where they were empty.
  Error located(const ErrorLocation& outer) const;

  /// A stable identifier of the kind of problem (e.g. "label_not_integer"), for reports that
  /// group problems; empty when the kind needs none.
  const std::string& code() const { return code_; }
  Error with_code(std::string code) const;

 private:
  std::string problem_;
  std::string fix_;
  ErrorLocation where_;
  std::string code_;
};

/// "file (case X, channel Y)" with absent parts left out; empty when nothing is known.
std::string describe_location(const ErrorLocation& where);

/// `error.what()` for a user: LibTorch's errors append "Exception raised from ..." and a stack
/// trace, which is cut off here.
std::string error_message(const std::exception& error);

}  // namespace mlseg
