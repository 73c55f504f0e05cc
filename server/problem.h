// RFC 9457 problem details. Every error response of the service is rendered
// here and only here: Status → HTTP status, stable type URI, title.
#pragma once

#include <string>

#include "common/status.h"
#include "server/http_types.h"

namespace geoledger::server {

// Stable machine-readable problem kinds. The type URI is
// "urn:geoledger:problem:<slug>"; slugs never change once published.
enum class ProblemKind {
  kBadRequest,            // 400
  kUnauthenticated,       // 401
  kForbidden,             // 403
  kNotFound,              // 404
  kMethodNotAllowed,      // 405
  kRequestTimeout,        // 408
  kConflict,              // 409
  kPreconditionFailed,    // 412: If-Match / If-None-Match
  kPayloadTooLarge,       // 413
  kUnsupportedMediaType,  // 415
  kErased,                // 410: crypto-shredded
  kHeadersTooLarge,       // 431
  kRateLimited,           // 429
  kInternal,              // 500
  kDataLoss,              // 500: stored data failed an integrity check
  kUnavailable,           // 503
};

int ProblemHttpStatus(ProblemKind kind);
std::string ProblemTypeUri(ProblemKind kind);

// Builds the application/problem+json response. `detail` must not contain
// secrets or personal data; it is shown to the caller.
HttpResponse MakeProblem(ProblemKind kind, const std::string& detail,
                         const std::string& request_id = "");

// The one mapping from Status to problem. Internal errors are reported
// without their message (it is logged instead). Data-loss messages are shown:
// they name where stored data failed an integrity check (an entry index, a
// record id), which is what an operator or auditor needs, and by contract
// never carry key material or personal data.
ProblemKind ProblemKindFor(StatusCode code);
HttpResponse ProblemFromStatus(const Status& status, const std::string& request_id = "");

}  // namespace geoledger::server
