// Where the CLI gets its bearer token: a token file (--token-file or
// GEOLEDGER_TOKEN_FILE) or the GEOLEDGER_TOKEN environment variable.
//
// Error messages name the file or variable and never include the token.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace geoledger::cli {

constexpr size_t kMaxTokenFileBytes = 4096;

// Reads the token in `path`, trimmed of surrounding whitespace.
// kNotFound: the file does not exist.
// kPermissionDenied: it cannot be opened, or it is readable by group or
//   others (the message says how to fix the mode).
// kInvalidArgument: not a regular file, larger than kMaxTokenFileBytes,
//   empty, or not a single token (see CheckToken).
StatusOr<std::string> ReadTokenFile(const std::string& path);

// Accepts `token` when it is non-empty visible ASCII (no spaces or control
// characters) and returns it; kInvalidArgument naming `source` otherwise.
StatusOr<std::string> CheckToken(std::string_view token, std::string_view source);

// The token to use: from `token_file` when it is non-empty, else from
// `env_token` (the value of GEOLEDGER_TOKEN, may be null), trimmed.
// kInvalidArgument when neither is given; otherwise the errors above.
StatusOr<std::string> ResolveToken(const std::string& token_file, const char* env_token);

}  // namespace geoledger::cli
