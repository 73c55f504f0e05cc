#include "residency/bundle.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include "common/encoding.h"
#include "common/files.h"
#include "crypto/hash.h"

namespace geoledger::residency {
namespace {

std::string SignedMessage(std::string_view payload) {
  std::string m(kBundleFormat);
  m += '\n';
  m.append(payload);
  return m;
}

StatusOr<PolicyDocument> ParsePayload(std::string_view payload, const Jurisdictions& j) {
  GL_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(payload, "policy bundle payload"));
  if (!doc.is_object()) return InvalidArgument("policy bundle: payload is not an object");
  for (const auto& [key, value] : doc.items()) {
    if (key != "format" && key != "version" && key != "regions" && key != "tenants")
      return InvalidArgument("policy bundle: unknown payload field \"" + key + "\"");
  }
  if (!doc.contains("format") || !doc["format"].is_string() || doc["format"].get<std::string>() != kBundleFormat)
    return InvalidArgument("policy bundle: payload format is not " + std::string(kBundleFormat));
  if (!doc.contains("version") || !doc["version"].is_number_unsigned() || doc["version"] == 0 ||
      doc["version"].get<uint64_t>() > kMaxPolicyVersion)
    return InvalidArgument("policy bundle: version must be an integer from 1 to " + std::to_string(kMaxPolicyVersion));
  if (!doc.contains("regions") || !doc["regions"].is_array() || !doc.contains("tenants") ||
      !doc["tenants"].is_array())
    return InvalidArgument("policy bundle: regions and tenants must be arrays");
  PolicyDocument out;
  out.version = doc["version"].get<uint64_t>();
  std::set<std::string> region_ids;
  for (const auto& r : doc["regions"]) {
    if (!r.is_object() || !r.contains("id") || !r["id"].is_string())
      return InvalidArgument("policy bundle: region without id");
    const std::string id = r["id"].get<std::string>();
    GL_ASSIGN_OR_RETURN(Region region, RegionFromJson(id, r, j));
    if (!out.regions.empty() && out.regions.back().id >= id)
      return InvalidArgument("policy bundle: regions not sorted by id at \"" + id + "\"");
    region_ids.insert(id);
    out.regions.push_back(std::move(region));
  }
  if (out.regions.size() > kMaxRegions) return InvalidArgument("policy bundle: too many regions");
  for (const auto& t : doc["tenants"]) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_string())
      return InvalidArgument("policy bundle: tenant without id");
    const std::string id = t["id"].get<std::string>();
    GL_ASSIGN_OR_RETURN(Tenant tenant, TenantFromJson(id, t, j));
    if (!out.tenants.empty() && out.tenants.back().id >= id)
      return InvalidArgument("policy bundle: tenants not sorted by id at \"" + id + "\"");
    GL_RETURN_IF_ERROR(CheckTenantReferences(
        tenant, [&](const std::string& rid) { return region_ids.count(rid) != 0; }));
    out.tenants.push_back(std::move(tenant));
  }
  // One policy, one signed byte string: the payload must be exactly the
  // policy's rendering (sorted, compact, and each entity with every member
  // its rendering has, an empty allowed_regions say). One comparison covers
  // all of that; rendering the payload's JSON again first would only repeat
  // part of it.
  if (CanonicalPolicyJson(out) != payload)
    return InvalidArgument("policy bundle: payload is not canonical (regions and tenants must be rendered as "
                           "the API renders them)");
  return out;
}

// The version a canonical payload states, read from its end (its keys are
// sorted, so "version" comes last) without parsing the policy: a million
// tenants take seconds to parse and milliseconds to skip. nullopt when the
// payload does not end the way a canonical one does.
std::optional<uint64_t> TailVersion(std::string_view payload) {
  constexpr std::string_view kKey = ",\"version\":";
  if (payload.empty() || payload.back() != '}') return std::nullopt;
  const std::string_view body = payload.substr(0, payload.size() - 1);
  size_t start = body.size();
  while (start > 0 && body[start - 1] >= '0' && body[start - 1] <= '9') --start;
  const std::string_view number = body.substr(start);
  // At most 16 digits: kMaxPolicyVersion has 16.
  if (number.empty() || number.size() > 16 || (number.size() > 1 && number[0] == '0')) return std::nullopt;
  if (start < kKey.size() || body.substr(start - kKey.size(), kKey.size()) != kKey) return std::nullopt;
  uint64_t v = 0;
  for (char c : number) v = v * 10 + static_cast<uint64_t>(c - '0');
  return v;
}

// A bundle's outer object, parsed once: its payload, when the bundle has
// one that decodes (read even when unverified, for the version it states),
// and whether a trusted key signed it: OK, kInvalidArgument for a malformed
// bundle, kPermissionDenied when no trusted key signed it. The policy in
// the payload is not parsed.
struct OpenedBundle {
  std::optional<std::string> payload;
  Status verified;
  std::string key_id;  // as the bundle names it (checked when verified)

  // Where a verified bundle's policy came from, for its import's audit
  // entry and history record: the signing key's id and the SHA-256 of the
  // signed payload, which a holder of the bundle file can recompute.
  std::vector<std::pair<std::string, std::string>> Provenance() const {
    const crypto::Sha256Digest d = crypto::Sha256(payload ? *payload : std::string());
    return {{"key_id", key_id}, {"payload_sha256", HexEncode(crypto::AsView(d))}};
  }
};

Status CheckSignature(const nlohmann::json& outer, const std::optional<std::string>& payload,
                      const std::vector<std::string>& trusted_public_keys) {
  if (!outer.is_object() || outer.size() != 4)
    return InvalidArgument("policy bundle: want an object with format, key_id, payload, signature");
  for (const char* field : {"format", "key_id", "payload", "signature"}) {
    if (!outer.contains(field) || !outer.at(field).is_string())
      return InvalidArgument(std::string("policy bundle: ") + field + " must be a string");
  }
  if (outer.at("format").get<std::string>() != kBundleFormat)
    return InvalidArgument("policy bundle: unsupported format");
  std::optional<std::string> signature = Base64Decode(outer.at("signature").get<std::string>());
  if (!payload || !signature) return InvalidArgument("policy bundle: payload or signature is not base64");
  const std::string key_id = outer.at("key_id").get<std::string>();
  // BundleKeyId's form: a bundle naming anything else was not made by an
  // exporter, and its key_id is never echoed into an error or a log.
  if (key_id.size() != 16 || !HexDecode(key_id))  // lowercase only, as HexEncode writes it
    return InvalidArgument("policy bundle: key_id must be 16 lowercase hex digits");
  const std::string message = SignedMessage(*payload);
  for (const std::string& key : trusted_public_keys) {
    if (BundleKeyId(key) != key_id) continue;
    if (crypto::Ed25519Verify(key, message, *signature)) return Status::Ok();
  }
  return PermissionDenied("policy bundle: not signed by a trusted key (key_id " + key_id + ")");
}

OpenedBundle OpenBundle(std::string_view bundle, const std::vector<std::string>& trusted_public_keys) {
  OpenedBundle out;
  StatusOr<nlohmann::json> outer = ParseJson(bundle, "policy bundle");
  if (!outer.ok()) {
    out.verified = outer.status();
    return out;
  }
  if (outer->is_object() && outer->contains("payload") && outer->at("payload").is_string())
    out.payload = Base64Decode(outer->at("payload").get<std::string>());
  out.verified = CheckSignature(*outer, out.payload, trusted_public_keys);
  if (out.verified.ok()) out.key_id = outer->at("key_id").get<std::string>();
  return out;
}

}  // namespace

std::string CanonicalPolicyJson(const PolicyDocument& doc) {
  std::vector<const Region*> regions;
  for (const auto& r : doc.regions) regions.push_back(&r);
  std::sort(regions.begin(), regions.end(), [](auto* a, auto* b) { return a->id < b->id; });
  std::vector<const Tenant*> tenants;
  for (const auto& t : doc.tenants) tenants.push_back(&t);
  std::sort(tenants.begin(), tenants.end(), [](auto* a, auto* b) { return a->id < b->id; });
  nlohmann::json j = {{"format", kBundleFormat}, {"version", doc.version}};
  j["regions"] = nlohmann::json::array();
  for (const Region* r : regions) j["regions"].push_back(RegionToJson(*r));
  j["tenants"] = nlohmann::json::array();
  for (const Tenant* t : tenants) j["tenants"].push_back(TenantToJson(*t));
  return DumpJson(j);
}

std::string BundleKeyId(std::string_view public_key) {
  const crypto::Sha256Digest d = crypto::Sha256(public_key);
  return HexEncode(crypto::AsView(d).substr(0, 8));
}

std::string SignBundle(const PolicyDocument& doc, const crypto::Ed25519Signer& signer) {
  const std::string payload = CanonicalPolicyJson(doc);
  nlohmann::json outer = {{"format", kBundleFormat},
                          {"key_id", BundleKeyId(signer.public_key())},
                          {"payload", Base64Encode(payload)},
                          {"signature", Base64Encode(signer.Sign(SignedMessage(payload)))}};
  return DumpJson(outer);
}

StatusOr<PolicyDocument> VerifyBundle(std::string_view bundle,
                                      const std::vector<std::string>& trusted_public_keys,
                                      const Jurisdictions& jurisdictions) {
  OpenedBundle opened = OpenBundle(bundle, trusted_public_keys);
  GL_RETURN_IF_ERROR(opened.verified);
  return ParsePayload(*opened.payload, jurisdictions);
}

std::string PendingImportPath(const std::string& lkg_path) { return lkg_path + ".pending"; }

std::string DescribeOutcome(const PendingImport& pending) {
  switch (pending.outcome) {
    case PendingImport::kSaved: return "saved";
    case PendingImport::kNotStored: return "not stored";
    case PendingImport::kSuperseded: return "superseded by a last-known-good file as new or newer";
    case PendingImport::kUnverified: return "does not verify: " + pending.detail;
  }
  return "unknown";
}

namespace {

// Settles the pending file an import left (ImportBundle), if any: it
// becomes the last-known-good file when it verifies, the store holds the
// import at the version it states (a crash before its rename, a write that
// reported a failure and reached the disk, or a rename that failed), and
// the last-known-good file is not a verified bundle of that version or a
// newer one (placed by an operator since). Otherwise it is removed.
// Nothing is activated from it.
StatusOr<std::optional<PendingImport>> SettlePendingImport(const PolicyStore& store, const std::string& lkg_path,
                                                           const std::vector<std::string>& trusted_public_keys) {
  const std::string path = PendingImportPath(lkg_path);
  GL_ASSIGN_OR_RETURN(std::optional<std::string> pending, ReadRegularFile(path));
  if (!pending) return std::optional<PendingImport>();
  const OpenedBundle p = OpenBundle(*pending, trusted_public_keys);
  PendingImport settled{p.payload ? TailVersion(*p.payload) : std::nullopt, PendingImport::kUnverified, ""};
  if (!p.verified.ok()) settled.detail = p.verified.message();
  else if (!settled.version) settled.detail = "its version cannot be read from the end of its payload";
  if (p.verified.ok() && settled.version) {
    GL_ASSIGN_OR_RETURN(const bool stored, store.ImportedAt(*settled.version));
    settled.outcome = stored ? PendingImport::kSaved : PendingImport::kNotStored;
  }
  if (settled.outcome == PendingImport::kSaved) {
    // A file that cannot be read is not a verified bundle: the rename below
    // replaces it, or fails and says why.
    StatusOr<std::optional<std::string>> current = ReadRegularFile(lkg_path);
    if (current.ok() && *current) {
      const OpenedBundle c = OpenBundle(**current, trusted_public_keys);
      const std::optional<uint64_t> v = c.payload ? TailVersion(*c.payload) : std::nullopt;
      if (c.verified.ok() && v.value_or(0) >= *settled.version) settled.outcome = PendingImport::kSuperseded;
    }
  }
  if (settled.outcome == PendingImport::kSaved) {
    GL_RETURN_IF_ERROR(RenameDurably(path, lkg_path));
  } else if (::unlink(path.c_str()) != 0) {
    return Internal("remove " + path + ": " + std::strerror(errno));
  }
  return std::optional<PendingImport>(settled);
}

}  // namespace

StatusOr<ImportedBundle> ImportBundle(PolicyStore& store, std::string_view bundle,
                                      const std::vector<std::string>& trusted_public_keys,
                                      const std::string& lkg_path, std::string_view actor,
                                      const AuditChange& audit) {
  const OpenedBundle opened = OpenBundle(bundle, trusted_public_keys);
  GL_RETURN_IF_ERROR(opened.verified);
  GL_ASSIGN_OR_RETURN(PolicyDocument doc, ParsePayload(*opened.payload, store.jurisdictions()));
  const auto provenance = opened.Provenance();
  // One import at a time, activation and file together: the last-known-good
  // file always ends up holding the newest activated bundle, never an older
  // one written after it, and the pending file is this import's.
  static std::mutex import_mu;
  std::lock_guard<std::mutex> lock(import_mu);
  // While an earlier import's outcome is unknown (its write failed), its
  // pending file must stay for the next start: nothing may overwrite it.
  GL_RETURN_IF_ERROR(store.Usable());
  if (lkg_path.empty()) {
    GL_ASSIGN_OR_RETURN(ChangeRecord rec, store.Replace(actor, doc, audit, provenance));
    return ImportedBundle{std::move(rec), Status::Ok(), std::nullopt};
  }
  // A rollback is refused before any file is touched.
  GL_RETURN_IF_ERROR(store.CheckNewer(doc.version));
  // A pending file left by an earlier import whose rename failed holds the
  // active bundle: put it in place before this import overwrites it. Until
  // that works, imports are refused: a bundle that is active must be on disk.
  StatusOr<std::optional<PendingImport>> settled = SettlePendingImport(store, lkg_path, trusted_public_keys);
  if (!settled.ok())
    return Internal("policy bundle version " + std::to_string(doc.version) +
                    " was not imported: an earlier import's saved bundle could not be put in place: " +
                    settled.status().message());
  // The bundle is on disk before its import is written: should that write
  // fail and yet reach the disk, the next start finds both and makes the
  // bundle the last-known-good file (LoadLastKnownGood). A rollback, which
  // store.Replace refuses, is not written at all.
  const std::string pending = PendingImportPath(lkg_path);
  if (Status s = WriteFileAtomically(pending, bundle); !s.ok())
    return Internal("policy bundle version " + std::to_string(doc.version) +
                    " was not imported: it could not be saved first: " + s.message());
  StatusOr<ChangeRecord> rec = store.Replace(actor, doc, audit, provenance);
  if (!rec.ok()) {
    // Kept when the store cannot tell whether the import reached the disk:
    // the next start decides.
    if (store.Usable().ok()) ::unlink(pending.c_str());
    return rec.status();
  }
  ImportedBundle out{std::move(rec).value(), Status::Ok(), std::move(settled).value()};
  // If the rename fails, the pending file stays: the next import or start
  // puts it in place (SettlePendingImport).
  if (Status s = RenameDurably(pending, lkg_path); !s.ok())
    out.last_known_good = Internal("policy bundle version " + std::to_string(doc.version) +
                                   " is active but the last-known-good file was not saved: " + s.message());
  return out;
}

namespace {

// Removes the temporary files (WriteFileAtomically's `<path>.tmp.XXXXXX`)
// that a crash while writing the last-known-good or the pending file left
// beside them. Only at start, when no import is writing one. Returns how
// many were removed.
StatusOr<size_t> RemoveLeftoverTemporaries(const std::string& lkg_path) {
  const std::filesystem::path lkg(lkg_path);
  const std::string prefixes[] = {lkg.filename().string() + ".tmp.",
                                  std::filesystem::path(PendingImportPath(lkg_path)).filename().string() + ".tmp."};
  const std::filesystem::path dir = lkg.has_parent_path() ? lkg.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  size_t removed = 0;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    for (const std::string& prefix : prefixes) {
      // mkostemp's suffix: six characters.
      if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
      if (::unlink(it->path().c_str()) != 0)
        return Internal("remove " + it->path().string() + ": " + std::strerror(errno));
      ++removed;
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory)
    return Internal("list " + dir.string() + ": " + ec.message());
  return removed;
}

}  // namespace

StatusOr<LastKnownGood> LoadLastKnownGood(PolicyStore& store, const std::string& lkg_path,
                                          const std::vector<std::string>& trusted_public_keys,
                                          const AuditChange& audit) {
  LastKnownGood out{std::nullopt, Status::Ok(), std::nullopt, 0};
  GL_ASSIGN_OR_RETURN(out.temporaries_removed, RemoveLeftoverTemporaries(lkg_path));
  GL_ASSIGN_OR_RETURN(out.pending, SettlePendingImport(store, lkg_path, trusted_public_keys));
  GL_ASSIGN_OR_RETURN(std::optional<std::string> bundle, ReadRegularFile(lkg_path));
  if (!bundle) return out;
  // The signature first; the policy is parsed only when the file is newer
  // (a million tenants take seconds to parse, and this runs at every start).
  const OpenedBundle opened = OpenBundle(*bundle, trusted_public_keys);
  // An unverified stated version only decides whether the file stops the
  // start; nothing unverified is ever activated.
  const std::optional<uint64_t> stated = opened.payload ? TailVersion(*opened.payload) : std::nullopt;
  if (stated && *stated <= store.version()) {
    if (!opened.verified.ok()) out.not_newer_unverified = opened.verified;
    return out;
  }
  GL_RETURN_IF_ERROR(opened.verified);
  GL_ASSIGN_OR_RETURN(PolicyDocument doc, ParsePayload(*opened.payload, store.jurisdictions()));
  GL_ASSIGN_OR_RETURN(ChangeRecord rec, store.Replace("last-known-good-bundle", doc, audit, opened.Provenance()));
  out.activated = std::move(rec);
  return out;
}

}  // namespace geoledger::residency
