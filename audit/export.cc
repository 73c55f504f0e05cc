#include "audit/export.h"

#include <bit>
#include <charconv>
#include <exception>

#include "audit/checkpoint.h"
#include "common/encoding.h"
#include "crypto/hash.h"
#include "geoledger/v1/audit.pb.h"

namespace geoledger::audit {
namespace {

constexpr size_t kMaxHeaderLine = 4096;
constexpr uint64_t kProgressEvery = 1024;

void PutU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

bool ValidOriginText(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  return true;
}

// Reads one '\n'-terminated line (without the newline). False on EOF before
// the newline or when the line exceeds kMaxHeaderLine.
bool ReadLine(std::istream& in, std::string* line) {
  line->clear();
  for (;;) {
    int c = in.get();
    if (c == std::char_traits<char>::eof()) return false;
    if (c == '\n') return true;
    if (line->size() >= kMaxHeaderLine) return false;
    line->push_back(static_cast<char>(c));
  }
}

bool ParseCanonicalU64(std::string_view s, uint64_t* out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Reads "<key> <value>" and returns the value.
StatusOr<std::string> HeaderField(std::istream& in, std::string_view key) {
  std::string line;
  if (!ReadLine(in, &line))
    return InvalidArgument("header: missing or overlong \"" + std::string(key) + "\" line");
  std::string want = std::string(key) + " ";
  if (line.compare(0, want.size(), want) != 0)
    return InvalidArgument("header: expected \"" + std::string(key) + "\" line");
  return line.substr(want.size());
}

StatusOr<Hash> HeaderHash(std::istream& in, std::string_view key) {
  GL_ASSIGN_OR_RETURN(std::string b64, HeaderField(in, key));
  auto raw = Base64Decode(b64);
  if (!raw || raw->size() != kHashBytes)
    return InvalidArgument("header: \"" + std::string(key) + "\" is not a base64 32-byte hash");
  return *HashFromBytes(*raw);
}

enum class ReadResult { kOk, kEof, kShort };

// Reads exactly n bytes into *out. kEof when nothing at all could be read.
ReadResult ReadExact(std::istream& in, size_t n, std::string* out) {
  out->resize(n);
  if (n == 0) return ReadResult::kOk;
  in.read(out->data(), static_cast<std::streamsize>(n));
  auto got = static_cast<size_t>(in.gcount());
  if (got == n) return ReadResult::kOk;
  return got == 0 ? ReadResult::kEof : ReadResult::kShort;
}

ReadResult ReadU32(std::istream& in, uint32_t* v) {
  std::string b;
  ReadResult r = ReadExact(in, 4, &b);
  if (r != ReadResult::kOk) return r;
  *v = (uint32_t{static_cast<uint8_t>(b[0])} << 24) | (uint32_t{static_cast<uint8_t>(b[1])} << 16) |
       (uint32_t{static_cast<uint8_t>(b[2])} << 8) | uint32_t{static_cast<uint8_t>(b[3])};
  return ReadResult::kOk;
}

std::string EntryPrefix(uint64_t i) { return "entry " + std::to_string(i) + ": "; }

StatusOr<VerifyResult> VerifyImpl(std::istream& in, std::string_view public_key, std::string_view origin,
                                  const std::function<void(uint64_t, uint64_t)>& progress) {
  // ---- header ----
  std::string magic;
  if (ReadExact(in, kExportMagic.size(), &magic) != ReadResult::kOk || magic != kExportMagic)
    return InvalidArgument("header: not a geoledger-audit-export v1 file (bad magic line)");
  GL_ASSIGN_OR_RETURN(std::string file_origin, HeaderField(in, "origin"));
  if (!ValidOriginText(file_origin)) return InvalidArgument("header: malformed origin");
  if (file_origin != origin)
    return InvalidArgument("header: origin \"" + file_origin + "\" does not match expected origin \"" +
                           std::string(origin) + "\"");
  GL_ASSIGN_OR_RETURN(std::string start_text, HeaderField(in, "start"));
  GL_ASSIGN_OR_RETURN(std::string end_text, HeaderField(in, "end"));
  uint64_t start = 0, end = 0;
  if (!ParseCanonicalU64(start_text, &start)) return InvalidArgument("header: malformed start");
  if (!ParseCanonicalU64(end_text, &end)) return InvalidArgument("header: malformed end");
  if (end < start) return InvalidArgument("header: end " + end_text + " is before start " + start_text);
  std::vector<Hash> border;
  for (int i = 0; i < std::popcount(start); ++i) {
    GL_ASSIGN_OR_RETURN(Hash h, HeaderHash(in, "prefix"));
    border.push_back(h);
  }
  GL_ASSIGN_OR_RETURN(Hash prev_hash, HeaderHash(in, "prev"));
  if (start == 0 && prev_hash != Hash{})
    return InvalidArgument("header: prev must be 32 zero bytes when start is 0");
  std::string blank;
  if (!ReadLine(in, &blank) || !blank.empty())
    return InvalidArgument("header: expected a blank line after \"prev\" (wrong number of prefix lines?)");
  auto frontier_or = Frontier::FromBorder(start, std::move(border));
  if (!frontier_or.ok()) return InvalidArgument("header: bad prefix border: " + frontier_or.status().message());
  Frontier frontier = std::move(*frontier_or);

  // ---- records ----
  const uint64_t total = end - start;
  std::string prev(crypto::AsView(prev_hash));
  std::string bytes;
  v1::AuditEntry entry;
  for (uint64_t i = start; i < end; ++i) {
    uint32_t len = 0;
    switch (ReadU32(in, &len)) {
      case ReadResult::kOk: break;
      case ReadResult::kEof:
        return InvalidArgument(EntryPrefix(i) + "record missing: export ends after " + std::to_string(i - start) +
                               " of " + std::to_string(total) + " entries");
      case ReadResult::kShort: return InvalidArgument(EntryPrefix(i) + "record truncated (in length field)");
    }
    if (len > kMaxExportRecordBytes)
      return InvalidArgument(EntryPrefix(i) + "record length " + std::to_string(len) + " exceeds the limit of " +
                             std::to_string(kMaxExportRecordBytes) + " bytes");
    if (ReadExact(in, len, &bytes) != ReadResult::kOk) return InvalidArgument(EntryPrefix(i) + "record truncated");
    if (!entry.ParseFromString(bytes)) return InvalidArgument(EntryPrefix(i) + "does not parse as AuditEntry");
    if (entry.index() != i)
      return DataLoss(EntryPrefix(i) + "index field says " + std::to_string(entry.index()));
    if (entry.prev_entry_hash() != prev) {
      if (i == start && start == 0)
        return DataLoss(EntryPrefix(i) + "chain broken: prev_entry_hash of the first entry is not 32 zero bytes");
      if (i == start)
        return DataLoss(EntryPrefix(i) + "chain broken: prev_entry_hash does not match the header's prev hash");
      return DataLoss(EntryPrefix(i) + "chain broken: prev_entry_hash does not match entry " + std::to_string(i - 1));
    }
    prev = std::string(crypto::AsView(crypto::Sha256(bytes)));
    Status st = frontier.Append(LeafHash(bytes), nullptr);
    if (!st.ok()) return InvalidArgument(EntryPrefix(i) + st.message());
    uint64_t done = i - start + 1;
    if (progress && done % kProgressEvery == 0 && done != total) progress(done, total);
  }
  if (progress) progress(total, total);

  // ---- checkpoint record ----
  uint32_t cp_len = 0;
  switch (ReadU32(in, &cp_len)) {
    case ReadResult::kOk: break;
    case ReadResult::kEof: return InvalidArgument("checkpoint: missing (export ends after the entries)");
    case ReadResult::kShort: return InvalidArgument("checkpoint: record truncated (in length field)");
  }
  if (cp_len > kMaxExportCheckpointBytes)
    return InvalidArgument("checkpoint: record length " + std::to_string(cp_len) + " exceeds the limit of " +
                           std::to_string(kMaxExportCheckpointBytes) + " bytes");
  std::string note;
  if (ReadExact(in, cp_len, &note) != ReadResult::kOk) return InvalidArgument("checkpoint: record truncated");
  if (in.peek() != std::char_traits<char>::eof())
    return InvalidArgument("trailing garbage after the checkpoint record");
  if (in.bad()) return InvalidArgument("read error");

  // ---- signature, size, root ----
  auto cp = OpenCheckpoint(note, origin, public_key);
  if (!cp.ok()) {
    if (cp.status().code() == StatusCode::kPermissionDenied)
      return PermissionDenied("checkpoint: signature does not verify");
    return InvalidArgument("checkpoint: malformed: " + cp.status().message());
  }
  if (cp->size != end)
    return DataLoss("checkpoint: size " + std::to_string(cp->size) + " does not match export end " +
                    std::to_string(end));
  std::string root(crypto::AsView(frontier.Root()));
  if (!crypto::ConstantTimeEquals(root, cp->root_hash))
    return DataLoss("root mismatch: recomputed root of " + std::to_string(end) +
                    " entries differs from the signed checkpoint");
  return VerifyResult{total, end, root};
}

}  // namespace

StatusOr<std::string> BuildExport(std::string_view origin, uint64_t start,
                                  const std::vector<Hash>& prefix_border, std::string_view prev_hash,
                                  const std::vector<StoredEntry>& entries,
                                  std::string_view checkpoint_note) {
  if (!ValidOriginText(origin)) return InvalidArgument("export: malformed origin");
  if (prefix_border.size() != static_cast<size_t>(std::popcount(start)))
    return InvalidArgument("export: prefix border has " + std::to_string(prefix_border.size()) +
                           " hashes, start " + std::to_string(start) + " needs " +
                           std::to_string(std::popcount(start)));
  if (prev_hash.size() != kHashBytes) return InvalidArgument("export: prev hash must be 32 bytes");
  if (start == 0 && prev_hash != std::string(kHashBytes, '\0'))
    return InvalidArgument("export: prev hash must be 32 zero bytes when start is 0");
  if (entries.size() > UINT64_MAX - start) return InvalidArgument("export: range overflows");
  if (checkpoint_note.empty() || checkpoint_note.size() > kMaxExportCheckpointBytes)
    return InvalidArgument("export: checkpoint note is empty or too large");
  const uint64_t end = start + entries.size();

  std::string out(kExportMagic);
  out += "origin " + std::string(origin) + "\n";
  out += "start " + std::to_string(start) + "\n";
  out += "end " + std::to_string(end) + "\n";
  for (const Hash& h : prefix_border) out += "prefix " + Base64Encode(crypto::AsView(h)) + "\n";
  out += "prev " + Base64Encode(prev_hash) + "\n";
  out += "\n";
  for (size_t k = 0; k < entries.size(); ++k) {
    const StoredEntry& e = entries[k];
    if (e.index != start + k)
      return InvalidArgument("export: entry at position " + std::to_string(start + k) + " has index " +
                             std::to_string(e.index));
    if (e.bytes.size() > kMaxExportRecordBytes)
      return InvalidArgument("export: entry " + std::to_string(e.index) + " exceeds the record limit");
    PutU32(out, static_cast<uint32_t>(e.bytes.size()));
    out += e.bytes;
  }
  PutU32(out, static_cast<uint32_t>(checkpoint_note.size()));
  out += checkpoint_note;
  return out;
}

StatusOr<VerifyResult> VerifyExport(std::istream& in, std::string_view public_key, std::string_view origin,
                                    const std::function<void(uint64_t, uint64_t)>& progress) {
  try {
    return VerifyImpl(in, public_key, origin, progress);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("export: read failed: ") + e.what());
  } catch (...) {
    return InvalidArgument("export: read failed");
  }
}

}  // namespace geoledger::audit
