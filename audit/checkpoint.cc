#include "audit/checkpoint.h"

#include <charconv>
#include <vector>

#include "common/encoding.h"
#include "crypto/hash.h"

namespace geoledger::audit {
namespace {

constexpr std::string_view kEmDash = "\xe2\x80\x94";  // U+2014, as C2SP signed notes require

std::string KeyHash(std::string_view name, std::string_view public_key) {
  std::string typed = std::string(1, '\x01') + std::string(public_key);
  auto h = crypto::Sha256(std::string(name) + "\n" + typed);
  return std::string(reinterpret_cast<const char*>(h.data()), 4);
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      out.push_back(text.substr(start));  // unterminated: caller rejects
      break;
    }
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

bool ValidOrigin(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == '+' || c == 0x7f) return false;
  return true;
}

}  // namespace

std::string Checkpoint::Body() const {
  return origin + "\n" + std::to_string(size) + "\n" + Base64Encode(root_hash) + "\n";
}

std::string SignNote(std::string_view text, std::string_view name, const crypto::Ed25519Signer& signer) {
  std::string sig = KeyHash(name, signer.public_key()) + signer.Sign(text);
  return std::string(text) + "\n" + std::string(kEmDash) + " " + std::string(name) + " " + Base64Encode(sig) + "\n";
}

std::string SignCheckpoint(const Checkpoint& cp, const crypto::Ed25519Signer& signer) {
  return SignNote(cp.Body(), cp.origin, signer);
}

StatusOr<std::string> OpenNote(std::string_view note, std::string_view name, std::string_view public_key) {
  if (note.size() > 64 * 1024) return InvalidArgument("note: too large");
  if (note.empty() || note.back() != '\n') return InvalidArgument("note: must end with a newline");
  size_t split = note.find("\n\n");
  if (split == std::string_view::npos) return InvalidArgument("note: no blank line before signatures");
  std::string_view text = note.substr(0, split + 1);
  std::string_view sigs = note.substr(split + 2);
  const std::string want_hash = KeyHash(name, public_key);
  const std::string prefix = std::string(kEmDash) + " ";
  bool any_line = false;
  for (std::string_view line : SplitLines(sigs)) {
    any_line = true;
    if (line.substr(0, prefix.size()) != prefix) return InvalidArgument("note: malformed signature line");
    line.remove_prefix(prefix.size());
    size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos) return InvalidArgument("note: malformed signature line");
    auto blob = Base64Decode(line.substr(sp + 1));
    if (!blob || blob->size() < 5) return InvalidArgument("note: malformed signature");
    if (line.substr(0, sp) != name || blob->substr(0, 4) != want_hash) continue;  // another key's
    if (crypto::Ed25519Verify(public_key, text, blob->substr(4))) return std::string(text);
    return PermissionDenied("note: signature does not verify");
  }
  if (!any_line) return InvalidArgument("note: no signature lines");
  return PermissionDenied("note: not signed by the expected key");
}

StatusOr<Checkpoint> OpenCheckpoint(std::string_view note, std::string_view origin,
                                    std::string_view public_key) {
  GL_ASSIGN_OR_RETURN(std::string body, OpenNote(note, origin, public_key));
  auto lines = SplitLines(body);
  if (lines.size() < 3) return InvalidArgument("checkpoint: body needs origin, size and root hash lines");
  Checkpoint cp;
  cp.origin = std::string(lines[0]);
  if (cp.origin != origin) return InvalidArgument("checkpoint: origin is not " + std::string(origin));
  std::string_view size_text = lines[1];
  if (size_text.empty() || (size_text.size() > 1 && size_text[0] == '0'))
    return InvalidArgument("checkpoint: malformed tree size");
  auto [p, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), cp.size);
  if (ec != std::errc() || p != size_text.data() + size_text.size())
    return InvalidArgument("checkpoint: malformed tree size");
  auto root = Base64Decode(lines[2]);
  if (!root || root->size() != crypto::kSha256Bytes) return InvalidArgument("checkpoint: malformed root hash");
  cp.root_hash = std::move(*root);
  return cp;
}

StatusOr<VerifierKey> ParseVerifierKey(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  size_t p1 = text.find('+');
  size_t p2 = p1 == std::string_view::npos ? p1 : text.find('+', p1 + 1);
  if (p2 == std::string_view::npos) return InvalidArgument("verifier key: expected name+hash+key");
  VerifierKey vk;
  vk.name = std::string(text.substr(0, p1));
  if (!ValidOrigin(vk.name)) return InvalidArgument("verifier key: malformed name");
  auto hash = HexDecode(text.substr(p1 + 1, p2 - p1 - 1));
  auto key = Base64Decode(text.substr(p2 + 1));
  if (!hash || hash->size() != 4) return InvalidArgument("verifier key: malformed key hash");
  if (!key || key->size() != 1 + crypto::kEd25519PublicKeyBytes || (*key)[0] != '\x01')
    return InvalidArgument("verifier key: expected an Ed25519 key (type 0x01)");
  vk.public_key = key->substr(1);
  if (KeyHash(vk.name, vk.public_key) != *hash) return InvalidArgument("verifier key: key hash mismatch");
  return vk;
}

}  // namespace geoledger::audit
