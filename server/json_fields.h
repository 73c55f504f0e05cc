// Reading fields of a parsed JSON request body with 400-class errors that
// name the field.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "common/status.h"

namespace geoledger::server {

// The string field `name` of `obj`, 1..max bytes when present. Absent:
// "" when optional, else kInvalidArgument. Messages read "<what> '<name>' ...".
inline StatusOr<std::string> StringField(const nlohmann::json& obj, const char* name, bool required, size_t max,
                                         const char* what = "field") {
  if (!obj.is_object() || !obj.contains(name)) {
    if (required) return InvalidArgument(std::string(what) + " '" + name + "' is required");
    return std::string();
  }
  if (!obj[name].is_string()) return InvalidArgument(std::string(what) + " '" + name + "' must be a string");
  std::string v = obj[name].get<std::string>();
  if ((required && v.empty()) || v.size() > max)
    return InvalidArgument(std::string(what) + " '" + name + "' must be 1-" + std::to_string(max) + " bytes");
  return v;
}

// kInvalidArgument naming the first key of `obj` not in `allowed`.
template <typename Container>
Status OnlyFields(const nlohmann::json& obj, const Container& allowed) {
  if (!obj.is_object()) return InvalidArgument("body must be a JSON object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const auto& a : allowed) known |= (it.key() == a);
    if (!known) return InvalidArgument("unknown field '" + it.key() + "'");
  }
  return Status::Ok();
}

}  // namespace geoledger::server
