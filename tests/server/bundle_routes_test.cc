// The --policy-trusted-keys file format.
#include "server/bundle_routes.h"

#include <gtest/gtest.h>

#include "common/encoding.h"

namespace geoledger::server {
namespace {

TEST(TrustedKeysTest, ParsesKeysSkippingCommentsAndBlankLines) {
  std::string a(32, 'a'), b(32, 'b');
  auto keys = ParseTrustedKeys("# editor, eu-west-1\n" + Base64Encode(a) + "\n\n   " + Base64Encode(b) + " \r\n");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(*keys, (std::vector<std::string>{a, b}));
  EXPECT_TRUE(ParseTrustedKeys("").ok());
}

TEST(TrustedKeysTest, RejectsAnythingThatIsNotA32ByteKeyNamingTheLine) {
  auto bad = ParseTrustedKeys("# ok\n" + Base64Encode(std::string(31, 'x')) + "\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseTrustedKeys("not base64!\n").ok());
}

}  // namespace
}  // namespace geoledger::server
