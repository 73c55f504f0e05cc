// How the CLI renders server answers for people and scripts.
#pragma once

#include <string>

#include "cli/http_response.h"

namespace geoledger::cli {

// `body` pretty-printed with two-space indentation and a trailing newline
// when it is JSON; otherwise the body as received, newline-terminated
// (empty string for an empty body). Never throws.
std::string FormatBody(const std::string& body);

// A multi-line description of a non-2xx answer for stderr: the status line,
// then the problem document's detail, type and request_id (RFC 9457) when the
// body is one, the X-Request-Id header otherwise, and Retry-After when given.
// Values are copied from the response, which never contains our token.
// Never throws.
std::string DescribeHttpError(const HttpResponse& response);

}  // namespace geoledger::cli
