#include "common/encoding.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <random>
#include <thread>

#include "common/kv_store.h"
#include "common/status.h"
#include "tests/integration/test_server.h"

namespace geoledger {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  for (std::string_view ok : {"", "acme", "Zürich", "東京", "\xf0\x9f\x94\x92", "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf",
                              "\xe0\xa0\x80", "\xf0\x90\x80\x80"})
    EXPECT_TRUE(IsValidUtf8(ok)) << ok;
  EXPECT_TRUE(IsValidUtf8(std::string_view("a\0b", 3)));
}

TEST(Utf8Test, RejectsMalformedText) {
  for (std::string_view bad : {"\xff", "pers\xffonal", "\x80", "\xc3", "\xc3\x28", "\xc0\xaf", "\xc1\xbf",
                               "\xe0\x80\xaf", "\xed\xa0\x80", "\xf0\x80\x80\xaf", "\xf4\x90\x80\x80",
                               "\xf5\x80\x80\x80", "\xe2\x82", "\xf0\x9f\x94", "ok\xe2\x28\xa1"})
    EXPECT_FALSE(IsValidUtf8(bad)) << ::testing::PrintToString(std::string(bad));
}

TEST(EncodingTest, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(*Base64Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(*Base64Decode("Zm9vYmE="), "fooba");
}

TEST(EncodingTest, Base64RejectsNonCanonicalInput) {
  EXPECT_FALSE(Base64Decode("Zg"));      // missing padding
  EXPECT_FALSE(Base64Decode("Zh=="));    // non-zero trailing bits
  EXPECT_FALSE(Base64Decode("Z m9v"));   // junk
  EXPECT_FALSE(Base64Decode("Zm9v-_=="));
  EXPECT_FALSE(Base64UrlDecode("Zm9v+/"));
  EXPECT_FALSE(Base64UrlDecode("Z"));
}

TEST(EncodingTest, Base64UrlRoundTripsAllBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n < all.size(); n += 7) {
    auto part = all.substr(0, n);
    EXPECT_EQ(*Base64UrlDecode(Base64UrlEncode(part)), part);
    EXPECT_EQ(*Base64Decode(Base64Encode(part)), part);
  }
}

TEST(EncodingTest, HexRoundTripsAndRejectsUppercaseAndOddLength) {
  EXPECT_EQ(HexEncode("\x01\xab"), "01ab");
  EXPECT_EQ(*HexDecode("01ab"), "\x01\xab");
  EXPECT_FALSE(HexDecode("01AB"));
  EXPECT_FALSE(HexDecode("abc"));
}

TEST(EncodingTest, AppendHexWritesFixedWidthLowercaseDigits) {
  std::string out = "id-";
  AppendHex(0x2a, 8, out);
  EXPECT_EQ(out, "id-0000002a");
  out.clear();
  AppendHex(0xfedcba9876543210ull, 16, out);
  EXPECT_EQ(out, "fedcba9876543210");
  out.clear();
  AppendHex(0x1234, 2, out);  // only the low digits
  EXPECT_EQ(out, "34");
}

TEST(EncodingTest, AsciiLowerLowersOnlyAsciiLetters) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const char want = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : ch;
    EXPECT_EQ(AsciiLower(ch), want) << c;
  }
}

TEST(StatusTest, StatusOrCarriesValueOrError) {
  StatusOr<int> v = 7;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  StatusOr<int> e = NotFound("token 'x'");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(e.status().ToString(), "not_found: token 'x'");
  StatusOr<int> bad = Status::Ok();  // misuse becomes an internal error, not a value
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
}

TEST(KvStoreTest, MemoryStoreAppliesBatchesAndScansByPrefix) {
  auto kv = NewMemoryKvStore();
  KvBatch b;
  b.Put("tokens", "tok/a", "1");
  b.Put("tokens", "tok/b", "2");
  b.Put("tokens", "x/c", "3");
  ASSERT_TRUE(kv->Write(b, true).ok());
  std::vector<std::string> keys;
  ASSERT_TRUE(kv->Scan("tokens", "tok/", [&](std::string_view k, std::string_view) {
                  keys.emplace_back(k);
                  return true;
                }).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"tok/a", "tok/b"}));
  KvBatch d;
  d.Delete("tokens", "tok/a");
  ASSERT_TRUE(kv->Write(d, true).ok());
  EXPECT_FALSE(kv->Get("tokens", "tok/a")->has_value());
  EXPECT_EQ(**kv->Get("tokens", "tok/b"), "2");
}

TEST(KvStoreTest, RocksDbStorePersistsAcrossReopenAndRejectsUnknownNamespace) {
  std::string dir = ::testing::TempDir() + "/kv-" + std::to_string(::getpid());
  {
    auto kv = OpenRocksDbKvStore(dir, {"tokens"});
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    KvBatch b;
    b.Put("tokens", "k", std::string("v\0w", 3));
    ASSERT_TRUE((*kv)->Write(b, true).ok());
    KvBatch bad;
    bad.Put("nope", "k", "v");
    EXPECT_EQ((*kv)->Write(bad, true).code(), StatusCode::kNotFound);
    // A second open of the same directory fails while the first holds it.
    EXPECT_FALSE(OpenRocksDbKvStore(dir, {"tokens"}).ok());
  }
  auto kv = OpenRocksDbKvStore(dir, {"tokens"});
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(**(*kv)->Get("tokens", "k"), std::string("v\0w", 3));
}

// A snapshot sees the writes made before it and none after, in both stores.
void ExpectSnapshotIsolation(KvStore& kv) {
  KvBatch before;
  before.Put("tokens", "s/a", "1");
  before.Put("tokens", "s/b", "2");
  ASSERT_TRUE(kv.Write(before, false).ok());
  std::unique_ptr<KvSnapshot> snapshot = kv.Snapshot();
  KvBatch after;
  after.Put("tokens", "s/a", "changed");
  after.Delete("tokens", "s/b");
  after.Put("tokens", "s/c", "3");
  ASSERT_TRUE(kv.Write(after, false).ok());
  auto rows = [](auto& source) {
    std::vector<std::string> out;
    EXPECT_TRUE(source.Scan("tokens", "s/", [&](std::string_view k, std::string_view v) {
                        out.push_back(std::string(k) + "=" + std::string(v));
                        return true;
                      }).ok());
    return out;
  };
  EXPECT_EQ(rows(*snapshot), (std::vector<std::string>{"s/a=1", "s/b=2"}));
  EXPECT_EQ(rows(kv), (std::vector<std::string>{"s/a=changed", "s/c=3"}));
}

TEST(KvStoreTest, ASnapshotSeesNoLaterWrite) {
  auto memory = NewMemoryKvStore();
  ExpectSnapshotIsolation(*memory);
  std::string dir = ::testing::TempDir() + "/kv-snapshot-" + std::to_string(::getpid());
  {
    auto rocks = OpenRocksDbKvStore(dir, {"tokens"});
    ASSERT_TRUE(rocks.ok()) << rocks.status().ToString();
    ExpectSnapshotIsolation(**rocks);
  }
  std::filesystem::remove_all(dir);
}

// A backward scan walks one prefix's keys from the top, or from below a
// bound, and never strays into neighbouring prefixes, in both stores.
void ExpectBackwardScans(KvStore& kv) {
  KvBatch b;
  for (const char* k : {"h/a", "h/b/1", "h/b/2", "h/b/3", "h/b0", "h/c/9", "h/b\xff"}) b.Put("tokens", k, k);
  b.Put("tokens", std::string("h/b/\xff\xff"), "top");
  ASSERT_TRUE(kv.Write(b, false).ok());
  auto back = [&kv](std::string_view prefix, std::string_view before, size_t max = 100) {
    std::vector<std::string> out;
    EXPECT_TRUE(kv.ScanBackFrom("tokens", prefix, before, [&](std::string_view k, std::string_view) {
                    out.emplace_back(k);
                    return out.size() < max;
                  }).ok());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(back("h/b/", ""), (V{"h/b/\xff\xff", "h/b/3", "h/b/2", "h/b/1"}));
  EXPECT_EQ(back("h/b/", "h/b/3"), (V{"h/b/2", "h/b/1"}));       // `before` itself is left out
  EXPECT_EQ(back("h/b/", "h/b/25"), (V{"h/b/2", "h/b/1"}));      // a bound between keys
  EXPECT_EQ(back("h/b/", "h/z"), (V{"h/b/\xff\xff", "h/b/3", "h/b/2", "h/b/1"}));  // above the prefix
  EXPECT_EQ(back("h/b/", "h/b/1"), V{});
  EXPECT_EQ(back("h/b/", "", 2), (V{"h/b/\xff\xff", "h/b/3"}));  // stops when told
  EXPECT_EQ(back("h/c/", ""), V{"h/c/9"});
  EXPECT_EQ(back("h/d/", ""), V{});
  EXPECT_EQ(back("", "h/b/1"), V{"h/a"});
  EXPECT_EQ(back("h/b\xff", ""), V{"h/b\xff"});  // a prefix ending in 0xff
}

TEST(KvStoreTest, BackwardScansReadOnePrefixFromTheTop) {
  auto memory = NewMemoryKvStore();
  ExpectBackwardScans(*memory);
  const std::string dir = ::testing::TempDir() + "/kv-back-" + std::to_string(::getpid());
  {
    auto rocks = OpenRocksDbKvStore(dir, {"tokens"});
    ASSERT_TRUE(rocks.ok()) << rocks.status().ToString();
    ExpectBackwardScans(**rocks);
    EXPECT_EQ((*rocks)->ScanBackFrom("nope", "", "", [](std::string_view, std::string_view) { return true; }).code(),
              StatusCode::kNotFound);
  }
  std::filesystem::remove_all(dir);
}

// A purge under a live snapshot would report success and leave the deleted
// value in the compacted files (a compaction keeps what a snapshot can see):
// it waits for the snapshot instead.
TEST(KvStoreTest, APurgeWaitsForLiveSnapshotsAndThenRemovesTheValue) {
  const std::string dir = ::testing::TempDir() + "/kv-purge-" + std::to_string(::getpid());
  // Random hex: RocksDB's block compression would hide a repetitive value.
  std::mt19937_64 rng(std::random_device{}());
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(rng()));
  const std::string secret = "wrapped-key-" + HexEncode(bytes);
  {
    auto kv = OpenRocksDbKvStore(dir, {"keys"});
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    KvBatch put;
    put.Put("keys", "k", secret);
    ASSERT_TRUE((*kv)->Write(put, true).ok());
    std::unique_ptr<KvSnapshot> snapshot = (*kv)->Snapshot();
    KvBatch del;
    del.Delete("keys", "k");
    ASSERT_TRUE((*kv)->Write(del, true).ok());
    std::promise<Status> purged;
    auto result = purged.get_future();
    std::thread purge([&] { purged.set_value((*kv)->PurgeDeleted("keys")); });
    // Not a timing assertion: a purge that does not wait usually finishes in
    // this time, and then the value stays on disk (checked below).
    const bool finished_under_snapshot = result.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    snapshot.reset();
    purge.join();
    EXPECT_FALSE(finished_under_snapshot) << "the purge ran while a snapshot lived";
    ASSERT_TRUE(result.get().ok());
  }
  EXPECT_TRUE(testing::FilesContaining(dir, secret).empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace geoledger
