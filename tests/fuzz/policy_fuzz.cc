// Fuzz target: the residency policy parsers that take untrusted bytes (a
// tenant or region body of PUT /v1/tenants|regions, a policy bundle and the
// payload inside it), and the engine compiled from whatever they accept.
// The first byte picks the parser; the rest is its input:
//   't' tenant body, 'r' region body (ids fixed), 'b' a whole bundle checked
//   against a fixed trusted key, 'p' a payload that the test signs itself
//   with that key, so the fuzzer reaches the policy parsing behind the
//   signature.
// Oracles (a violation traps): an accepted tenant or region renders back to
// itself; an entity differs from itself in nothing; an accepted payload is
// the canonical rendering of what was parsed from it (one policy, one
// signed byte string); an unsigned bundle never verifies; the engine
// compiled from an accepted payload allows nothing to an unknown or
// suspended tenant, nor to a region the policy does not hold, and every
// allow names a legal basis.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/encoding.h"
#include "crypto/secret.h"
#include "crypto/signer.h"
#include "residency/bundle.h"
#include "residency/engine.h"
#include "residency/history.h"
#include "residency/model.h"

namespace {

using namespace geoledger::residency;  // NOLINT

struct World {
  std::shared_ptr<const Jurisdictions> jurisdictions = *BuiltinJurisdictions();
  geoledger::crypto::Ed25519Signer signer =
      std::move(*geoledger::crypto::Ed25519Signer::FromSeed(geoledger::crypto::SecretBytes::CopyFrom(std::string(32, 'f'))));
  std::vector<std::string> trusted = {signer.public_key()};
};

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void FuzzTenant(const World& w, std::string_view in) {
  auto body = ParseJson(in, "tenant");
  if (!body.ok()) return;
  auto t = TenantFromJson("acme", *body, *w.jurisdictions);
  if (!t.ok()) return;
  auto again = TenantFromJson("acme", TenantToJson(*t), *w.jurisdictions);
  Check(again.ok() && DumpJson(TenantToJson(*again)) == DumpJson(TenantToJson(*t)));
  Check(DiffTenant(*t, *t).empty());
  Check(!DiffTenant(std::nullopt, *t).empty());
}

void FuzzRegion(const World& w, std::string_view in) {
  auto body = ParseJson(in, "region");
  if (!body.ok()) return;
  auto r = RegionFromJson("eu-west-1", *body, *w.jurisdictions);
  if (!r.ok()) return;
  auto again = RegionFromJson("eu-west-1", RegionToJson(*r), *w.jurisdictions);
  Check(again.ok() && DumpJson(RegionToJson(*again)) == DumpJson(RegionToJson(*r)));
  Check(DiffRegion(*r, *r).empty());
}

// Every decision the compiled policy makes at one instant, checked against
// what no policy may allow.
void DecideAll(const World& w, const PolicyDocument& doc) {
  auto engine = Engine::Create({{}, w.jurisdictions});
  Check(engine.ok());
  SnapshotBuilder b = (*engine)->NewPolicy(doc.version);
  for (const Region& r : doc.regions) Check(b.PutRegion(r).ok());
  for (const Tenant& t : doc.tenants) Check(b.PutTenant(t).ok());
  Check((*engine)->Install(std::move(b).Build()).ok());
  std::vector<std::string> regions = {"~nowhere"};  // no valid id: never in a policy
  for (const Region& r : doc.regions) regions.push_back(r.id);
  std::vector<const Tenant*> tenants = {nullptr};
  for (const Tenant& t : doc.tenants) tenants.push_back(&t);
  const int64_t now = 1'750'000'000;  // 2025-06-15
  for (const Tenant* t : tenants) {
    const std::string id = t ? t->id : "~nobody";  // likewise
    for (Category c : kAllCategories)
      for (size_t o = 0; o < kOperationCount; ++o)
        for (const std::string& region : regions) {
          OwnedDecision d = (*engine)->Decide(id, CategoryName(c), OperationName(static_cast<Operation>(o)), region, now);
          if (!d.allow) continue;
          Check(t != nullptr && t->status == TenantStatus::kActive);
          Check(region != "~nowhere" && d.route_region == region);
          Check(!d.legal_basis.empty());
          Check(d.policy_version == doc.version);
        }
  }
}

void FuzzBundle(const World& w, std::string_view in) {
  auto doc = VerifyBundle(in, w.trusted, *w.jurisdictions);
  Check(!doc.ok());  // nobody but this test holds the key, and it signed nothing here
}

void FuzzPayload(const World& w, std::string_view payload) {
  const std::string message = std::string(kBundleFormat) + "\n" + std::string(payload);
  nlohmann::json outer = {{"format", kBundleFormat},
                          {"key_id", BundleKeyId(w.signer.public_key())},
                          {"payload", geoledger::Base64Encode(payload)},
                          {"signature", geoledger::Base64Encode(w.signer.Sign(message))}};
  auto doc = VerifyBundle(outer.dump(), w.trusted, *w.jurisdictions);
  if (!doc.ok()) return;
  Check(CanonicalPolicyJson(*doc) == payload);
  DecideAll(w, *doc);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const World* world = new World();
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0]) {
    case 't': FuzzTenant(*world, in); break;
    case 'r': FuzzRegion(*world, in); break;
    case 'b': FuzzBundle(*world, in); break;
    case 'p': FuzzPayload(*world, in); break;
    default: break;
  }
  return 0;
}
