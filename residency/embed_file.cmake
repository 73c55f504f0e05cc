# cmake -DINPUT=file -DOUTPUT=file.cc -DSYMBOL=name -P embed_file.cmake
#
# Writes OUTPUT defining `std::string_view geoledger::residency::internal::SYMBOL()`
# that returns INPUT's bytes. A byte array rather than a string literal keeps
# the file valid whatever it contains and clear of string-length limits.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f],0x[0-9a-f][0-9a-f])" "\\1\n" bytes "${bytes}")
file(WRITE ${OUTPUT}.tmp
"// Generated from ${INPUT} by embed_file.cmake. Do not edit.
#include <string_view>

namespace geoledger::residency::internal {
namespace {
const unsigned char kBytes[${size} + 1] = {
${bytes}0};
}  // namespace
std::string_view ${SYMBOL}() {
  return std::string_view(reinterpret_cast<const char*>(kBytes), ${size});
}
}  // namespace geoledger::residency::internal
")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
