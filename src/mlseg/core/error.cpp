#include "mlseg/core/error.h"

namespace mlseg {
namespace {

std::string compose_message(const std::string& problem, const std::string& fix,
                            const ErrorLocation& where) {
  std::string message;
  const std::string location = describe_location(where);
  if (!location.empty()) message += location + ": ";
  message += problem;
  if (!fix.empty()) message += "\n  fix: " + fix;
  return message;
}

}  // namespace

std::string describe_location(const ErrorLocation& where) {
  std::string text = where.file;
  std::string details;
  if (!where.case_id.empty()) details += "case " + where.case_id;
  if (!where.channel.empty()) {
    if (!details.empty()) details += ", ";
    details += "channel " + where.channel;
  }
  if (!details.empty()) text += text.empty() ? details : " (" + details + ")";
  return text;
}

Error::Error(std::string problem, std::string fix, ErrorLocation where)
    : std::runtime_error(compose_message(problem, fix, where)),
      problem_(std::move(problem)),
      fix_(std::move(fix)),
      where_(std::move(where)) {}

Error Error::located(const ErrorLocation& outer) const {
  ErrorLocation merged = where_;
  if (merged.file.empty()) merged.file = outer.file;
  if (merged.case_id.empty()) merged.case_id = outer.case_id;
  if (merged.channel.empty()) merged.channel = outer.channel;
  Error copy(problem_, fix_, merged);
  copy.code_ = code_;
  return copy;
}

Error Error::with_code(std::string code) const {
  Error copy = *this;
  copy.code_ = std::move(code);
  return copy;
}

std::string error_message(const std::exception& error) {
  std::string text = error.what();
  const auto trace = text.find("\nException raised from ");
  if (trace != std::string::npos) text.erase(trace);
  return text;
}

}  // namespace mlseg
