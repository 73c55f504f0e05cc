#include "cli/output.h"

#include <nlohmann/json.hpp>

namespace geoledger::cli {
namespace {

// Replaces control characters (other than newline and tab when `multiline`)
// so a hostile answer cannot drive the terminal.
std::string Printable(const std::string& s, bool multiline) {
  std::string out = s;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 || u == 0x7f) && !(multiline && (c == '\n' || c == '\t'))) c = '?';
  }
  return out;
}

std::string Dump(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A string member of `doc`, or "".
std::string StringField(const nlohmann::json& doc, const char* name) {
  if (!doc.is_object()) return "";
  auto it = doc.find(name);
  if (it == doc.end() || !it->is_string()) return "";
  return Printable(it->get<std::string>(), false);
}

}  // namespace

std::string FormatBody(const std::string& body) {
  if (body.empty()) return "";
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return Dump(j, 2) + "\n";
  std::string out = Printable(body, true);
  if (out.back() != '\n') out += '\n';
  return out;
}

std::string DescribeHttpError(const HttpResponse& r) {
  std::string out = "HTTP " + std::to_string(r.status);
  if (!r.reason.empty()) out += " " + Printable(r.reason, false);
  nlohmann::json doc = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  std::string detail = StringField(doc, "detail");
  std::string type = StringField(doc, "type");
  std::string request_id = StringField(doc, "request_id");
  std::string title = StringField(doc, "title");
  if (!detail.empty()) out += ": " + detail;
  else if (!title.empty()) out += ": " + title;
  out += "\n";
  if (!type.empty()) out += "  type: " + type + "\n";
  if (request_id.empty())
    if (const std::string* h = r.Header("x-request-id")) request_id = Printable(*h, false);
  if (!request_id.empty()) out += "  request_id: " + request_id + "\n";
  if (const std::string* h = r.Header("retry-after")) out += "  retry after: " + Printable(*h, false) + " s\n";
  if (type.empty() && detail.empty() && !r.body.empty()) {
    std::string body = Printable(r.body.substr(0, 512), true);
    out += "  body: " + body + (r.body.size() > 512 ? "…" : "") + "\n";
  }
  return out;
}

}  // namespace geoledger::cli
