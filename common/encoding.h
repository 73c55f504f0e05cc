// Strict base64 (RFC 4648 §4, padded; §5 unpadded URL-safe) and lowercase hex.
// Decoders reject anything that is not canonical.
#pragma once

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

}  // namespace geoledger
