#include "server/problem.h"

#include <nlohmann/json.hpp>

namespace geoledger::server {
namespace {

struct KindInfo {
  int status;
  const char* slug;
  const char* title;
};

KindInfo Info(ProblemKind kind) {
  switch (kind) {
    case ProblemKind::kBadRequest: return {400, "bad-request", "Bad Request"};
    case ProblemKind::kUnauthenticated: return {401, "unauthenticated", "Unauthenticated"};
    case ProblemKind::kForbidden: return {403, "forbidden", "Forbidden"};
    case ProblemKind::kNotFound: return {404, "not-found", "Not Found"};
    case ProblemKind::kMethodNotAllowed: return {405, "method-not-allowed", "Method Not Allowed"};
    case ProblemKind::kRequestTimeout: return {408, "request-timeout", "Request Timeout"};
    case ProblemKind::kConflict: return {409, "conflict", "Conflict"};
    case ProblemKind::kPreconditionFailed: return {412, "precondition-failed", "Precondition Failed"};
    case ProblemKind::kPayloadTooLarge: return {413, "payload-too-large", "Payload Too Large"};
    case ProblemKind::kUnsupportedMediaType:
      return {415, "unsupported-media-type", "Unsupported Media Type"};
    case ProblemKind::kErased: return {410, "erased", "Erased"};
    case ProblemKind::kHeadersTooLarge:
      return {431, "headers-too-large", "Request Header Fields Too Large"};
    case ProblemKind::kRateLimited: return {429, "rate-limited", "Too Many Requests"};
    case ProblemKind::kInternal: return {500, "internal", "Internal Server Error"};
    case ProblemKind::kDataLoss: return {500, "data-loss", "Stored Data Failed an Integrity Check"};
    case ProblemKind::kUnavailable: return {503, "unavailable", "Service Unavailable"};
  }
  return {500, "internal", "Internal Server Error"};
}

}  // namespace

int ProblemHttpStatus(ProblemKind kind) { return Info(kind).status; }

std::string ProblemTypeUri(ProblemKind kind) {
  return std::string("urn:geoledger:problem:") + Info(kind).slug;
}

HttpResponse MakeProblem(ProblemKind kind, const std::string& detail,
                         const std::string& request_id) {
  KindInfo info = Info(kind);
  nlohmann::json doc = {{"type", ProblemTypeUri(kind)},
                        {"title", info.title},
                        {"status", info.status}};
  if (!detail.empty()) doc["detail"] = detail;
  if (!request_id.empty()) doc["request_id"] = request_id;
  HttpResponse r;
  r.status = info.status;
  r.content_type = "application/problem+json";
  r.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (kind == ProblemKind::kUnauthenticated) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

ProblemKind ProblemKindFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return ProblemKind::kInternal;  // not an error: a bug if rendered
    case StatusCode::kInvalidArgument: return ProblemKind::kBadRequest;
    case StatusCode::kUnauthenticated: return ProblemKind::kUnauthenticated;
    case StatusCode::kPermissionDenied: return ProblemKind::kForbidden;
    case StatusCode::kNotFound: return ProblemKind::kNotFound;
    case StatusCode::kAlreadyExists: return ProblemKind::kConflict;
    case StatusCode::kFailedPrecondition: return ProblemKind::kConflict;
    case StatusCode::kPreconditionFailed: return ProblemKind::kPreconditionFailed;
    case StatusCode::kResourceExhausted: return ProblemKind::kRateLimited;
    case StatusCode::kPayloadTooLarge: return ProblemKind::kPayloadTooLarge;
    case StatusCode::kUnsupportedMediaType: return ProblemKind::kUnsupportedMediaType;
    case StatusCode::kUnavailable: return ProblemKind::kUnavailable;
    case StatusCode::kErased: return ProblemKind::kErased;
    case StatusCode::kDataLoss: return ProblemKind::kDataLoss;
    case StatusCode::kInternal: return ProblemKind::kInternal;
  }
  return ProblemKind::kInternal;
}

HttpResponse ProblemFromStatus(const Status& status, const std::string& request_id) {
  ProblemKind kind = ProblemKindFor(status.code());
  // Internal details stay in the logs.
  std::string detail = kind == ProblemKind::kInternal ? "internal error; see server logs with this request_id"
                                                      : status.message();
  HttpResponse r = MakeProblem(kind, detail, request_id);
  if (kind == ProblemKind::kUnavailable) r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace geoledger::server
