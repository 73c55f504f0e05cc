// Strict base64 (RFC 4648 §4, padded; §5 unpadded URL-safe), lowercase hex
// and a UTF-8 check. Decoders reject anything that is not canonical.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace geoledger {

std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);
std::string Base64UrlEncode(std::string_view bytes);  // no padding
std::optional<std::string> Base64UrlDecode(std::string_view text);
std::string HexEncode(std::string_view bytes);
std::optional<std::string> HexDecode(std::string_view text);
// Appends the low `digits` (at most 16) hex digits of `v`, lowercase and
// zero-padded, to `out`.
void AppendHex(uint64_t v, int digits, std::string& out);
// True when `text` is well-formed UTF-8 (RFC 3629): no overlong forms, no
// surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view text);
// `c` with ASCII A-Z lowered; every other byte unchanged. Protocol text
// (header names, auth schemes, media types) is case-insensitive in ASCII
// only, whatever the process's locale.
constexpr char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace geoledger
