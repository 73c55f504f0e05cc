#include "audit/merkle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/encoding.h"

namespace geoledger::audit {
namespace {

using Proof = std::vector<Hash>;

Hash FromHex(std::string_view hex) { return *HashFromBytes(*HexDecode(hex)); }
std::string Hex(const Hash& h) { return HexEncode(crypto::AsView(h)); }

// ---- RFC 6962 / RFC 9162 reference test data --------------------------------
// Values only (no code), from transparency-dev/merkle:
//   testonly/constants.go @ 582a6ad190b6848f1d26f8bf08ddef29955d9db1
//     (LeafInputs, NodeHashes, RootHashes, CompactTrees, EmptyRootHash)
//   proof/verify_test.go @ 02194e9afb6c1d95b5381350007963aa70fff472
//     (inclusionProofs, consistencyProofs; leaf numbers there are 1-based)
// The same vectors appear in google/certificate-transparency-go
// merkletree/merkle_verifier_test.go and in google/trillian.
constexpr const char* kCtLeafInputs[] = {"",
                                         "00",
                                         "10",
                                         "2021",
                                         "3031",
                                         "40414243",
                                         "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"};
constexpr const char* kCtRoots[] = {  // by tree size 0..8
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
// NodeHashes()[level][index]: every complete subtree of the 8-leaf tree.
const std::vector<std::vector<std::string>> kCtNodeHashes = {
    {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"},
    {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"},
    {"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"},
    {"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"}};

struct ProofVector {
  uint64_t a;  // leaf index (0-based) or first size
  uint64_t b;  // tree size or second size
  std::vector<std::string> proof;
};
const std::vector<ProofVector> kCtInclusionProofs = {
    {0, 1, {}},
    {0,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}}};
const std::vector<ProofVector> kCtConsistencyProofs = {
    {1, 1, {}},
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}}};

Proof FromHexList(const std::vector<std::string>& hexes) {
  Proof out;
  for (const auto& h : hexes) out.push_back(FromHex(h));
  return out;
}

std::vector<Hash> CtLeafHashes() {
  std::vector<Hash> out;
  for (const char* hex : kCtLeafInputs) out.push_back(LeafHash(*HexDecode(hex)));
  return out;
}

// ---- RFC 9162 §2.1, written as recursively as the RFC states it ------------
using Leaves = std::span<const Hash>;

uint64_t LargestPowerOfTwoBelow(uint64_t n) {  // n > 1
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

Hash RefMth(Leaves d) {
  if (d.empty()) return crypto::Sha256("");
  if (d.size() == 1) return d[0];
  const uint64_t k = LargestPowerOfTwoBelow(d.size());
  return NodeHash(RefMth(d.first(k)), RefMth(d.subspan(k)));
}

Proof RefPath(uint64_t m, Leaves d) {
  if (d.size() <= 1) return {};
  const uint64_t k = LargestPowerOfTwoBelow(d.size());
  Proof p = m < k ? RefPath(m, d.first(k)) : RefPath(m - k, d.subspan(k));
  p.push_back(m < k ? RefMth(d.subspan(k)) : RefMth(d.first(k)));
  return p;
}

Proof RefSubproof(uint64_t m, Leaves d, bool b) {
  if (m == d.size()) return b ? Proof{} : Proof{RefMth(d)};
  const uint64_t k = LargestPowerOfTwoBelow(d.size());
  Proof p = m <= k ? RefSubproof(m, d.first(k), b) : RefSubproof(m - k, d.subspan(k), false);
  p.push_back(m <= k ? RefMth(d.subspan(k)) : RefMth(d.first(k)));
  return p;
}

Proof RefProof(uint64_t m, Leaves d) { return RefSubproof(m, d, true); }

// ---- a fake store of completed subtrees, as the ledger will keep them ------
class SubtreeStore {
 public:
  void Put(const std::vector<Subtree>& completed) {
    for (const Subtree& s : completed) hashes_[s.id] = s.hash;
  }
  SubtreeHashGetter Getter() {
    return [this](const NodeId& id) -> StatusOr<Hash> {
      ++reads_;
      auto it = hashes_.find(id);
      if (it == hashes_.end()) {
        return NotFound("subtree " + std::to_string(id.level) + "/" + std::to_string(id.index));
      }
      return it->second;
    };
  }
  const std::map<NodeId, Hash>& hashes() const { return hashes_; }
  int reads() const { return reads_; }
  void ResetReads() { reads_ = 0; }

 private:
  std::map<NodeId, Hash> hashes_;
  int reads_ = 0;
};

std::vector<Hash> SyntheticLeaves(size_t n) {
  std::vector<Hash> out;
  for (size_t i = 0; i < n; ++i) out.push_back(LeafHash("audit entry " + std::to_string(i)));
  return out;
}

// Reads allowed for one proof of a tree of n leaves: one per level plus the
// complete subtrees of one partial sibling, plus one for the consistency seed.
int MaxReads(uint64_t n) { return 2 * static_cast<int>(std::bit_width(n)) + 1; }

// Every same-length and changed-length corruption of `proof`.
std::vector<std::pair<std::string, Proof>> Tampered(const Proof& proof, const Hash& extra) {
  std::vector<std::pair<std::string, Proof>> out;
  for (size_t i = 0; i < proof.size(); ++i) {
    for (size_t byte : {size_t{0}, kHashBytes - 1}) {
      Proof p = proof;
      p[i][byte] ^= 0x10;
      out.emplace_back("flipped byte " + std::to_string(byte) + " of hash " + std::to_string(i), p);
    }
    Proof replaced = proof;
    replaced[i] = extra;
    out.emplace_back("replaced hash " + std::to_string(i), replaced);
  }
  if (!proof.empty()) {
    out.emplace_back("dropped last", Proof(proof.begin(), proof.end() - 1));
    out.emplace_back("dropped first", Proof(proof.begin() + 1, proof.end()));
  }
  Proof appended = proof;
  appended.push_back(extra);
  out.emplace_back("appended a hash", appended);
  Proof prepended = proof;
  prepended.insert(prepended.begin(), extra);
  out.emplace_back("prepended a hash", prepended);
  return out;
}

Hash Flipped(Hash h) {
  h[7] ^= 0x01;
  return h;
}

// ---- hashing and roots -----------------------------------------------------

TEST(MerkleHashTest, EmptyTreeRootIsSha256OfTheEmptyString) {
  EXPECT_EQ(Hex(EmptyRoot()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(RootFromLeafHashes({}), EmptyRoot());
  EXPECT_EQ(Frontier().Root(), EmptyRoot());
}

TEST(MerkleHashTest, LeafAndNodeHashesAreDomainSeparated) {
  const std::vector<Hash> leaves = CtLeafHashes();
  EXPECT_EQ(Hex(LeafHash("")), kCtRoots[1]);  // SHA-256(0x00)
  EXPECT_EQ(Hex(NodeHash(leaves[0], leaves[1])), kCtRoots[2]);
  EXPECT_NE(LeafHash(""), crypto::Sha256(""));
}

TEST(MerkleHashTest, RootsMatchTheCtReferenceVectors) {
  const std::vector<Hash> leaves = CtLeafHashes();
  for (size_t n = 0; n <= leaves.size(); ++n) {
    EXPECT_EQ(Hex(RootFromLeafHashes(std::span(leaves).first(n))), kCtRoots[n]) << "size " << n;
  }
}

TEST(MerkleHashTest, HashFromBytesTakesExactly32Bytes) {
  const Hash h = LeafHash("x");
  ASSERT_TRUE(HashFromBytes(crypto::AsView(h)).ok());
  EXPECT_EQ(*HashFromBytes(crypto::AsView(h)), h);
  EXPECT_EQ(HashFromBytes(crypto::AsView(h).substr(1)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(HashFromBytes(std::string(33, 'a')).status().code(), StatusCode::kInvalidArgument);
}

// ---- proofs against the reference vectors ---------------------------------

SubtreeStore CtStore() {
  SubtreeStore store;
  Frontier frontier;
  for (const Hash& leaf : CtLeafHashes()) {
    std::vector<Subtree> completed;
    EXPECT_TRUE(frontier.Append(leaf, &completed).ok());
    store.Put(completed);
  }
  return store;
}

TEST(MerkleProofTest, PersistedSubtreesAreTheCtReferenceNodeHashes) {
  const SubtreeStore store = CtStore();
  size_t expected = 0;
  for (uint32_t level = 0; level < kCtNodeHashes.size(); ++level) {
    for (uint64_t index = 0; index < kCtNodeHashes[level].size(); ++index, ++expected) {
      auto it = store.hashes().find(NodeId{level, index});
      ASSERT_NE(it, store.hashes().end()) << level << "/" << index;
      EXPECT_EQ(Hex(it->second), kCtNodeHashes[level][index]) << level << "/" << index;
    }
  }
  EXPECT_EQ(store.hashes().size(), expected);
}

TEST(MerkleProofTest, InclusionProofsMatchTheCtReferenceVectors) {
  SubtreeStore store = CtStore();
  const std::vector<Hash> leaves = CtLeafHashes();
  for (const ProofVector& v : kCtInclusionProofs) {
    auto proof = InclusionProof(v.a, v.b, store.Getter());
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    EXPECT_EQ(*proof, FromHexList(v.proof)) << v.a << " in " << v.b;
    EXPECT_TRUE(VerifyInclusion(leaves[v.a], v.a, v.b, *proof, FromHex(kCtRoots[v.b])).ok());
  }
}

TEST(MerkleProofTest, ConsistencyProofsMatchTheCtReferenceVectors) {
  SubtreeStore store = CtStore();
  for (const ProofVector& v : kCtConsistencyProofs) {
    auto proof = ConsistencyProof(v.a, v.b, store.Getter());
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    EXPECT_EQ(*proof, FromHexList(v.proof)) << v.a << " to " << v.b;
    EXPECT_TRUE(
        VerifyConsistency(v.a, v.b, FromHex(kCtRoots[v.a]), FromHex(kCtRoots[v.b]), *proof).ok());
  }
}

// ---- every proof of every small tree, from the persisted subtrees ----------

constexpr uint64_t kSweep = 64;

// Grows a tree leaf by leaf and calls check(n, store) with the store holding
// exactly the subtrees completed by the first n leaves.
template <typename Check>
void ForEverySize(const std::vector<Hash>& leaves, Check check) {
  SubtreeStore store;
  Frontier frontier;
  for (uint64_t n = 1; n <= leaves.size(); ++n) {
    std::vector<Subtree> completed;
    ASSERT_TRUE(frontier.Append(leaves[n - 1], &completed).ok());
    store.Put(completed);
    check(n, store);
  }
}

TEST(MerkleProofTest, EveryInclusionProofMatchesRfcPathAndVerifies) {
  const std::vector<Hash> leaves = SyntheticLeaves(kSweep);
  ForEverySize(leaves, [&](uint64_t n, SubtreeStore& store) {
    const Leaves tree = std::span(leaves).first(n);
    const Hash root = RefMth(tree);
    for (uint64_t i = 0; i < n; ++i) {
      store.ResetReads();
      auto proof = InclusionProof(i, n, store.Getter());
      ASSERT_TRUE(proof.ok()) << i << " in " << n << ": " << proof.status().ToString();
      EXPECT_LE(store.reads(), MaxReads(n)) << i << " in " << n;
      EXPECT_EQ(*proof, RefPath(i, tree)) << i << " in " << n;
      EXPECT_TRUE(VerifyInclusion(leaves[i], i, n, *proof, root).ok()) << i << " in " << n;
      auto computed = RootFromInclusionProof(leaves[i], i, n, *proof);
      ASSERT_TRUE(computed.ok());
      EXPECT_EQ(*computed, root);
    }
  });
}

TEST(MerkleProofTest, EveryConsistencyProofMatchesRfcProofAndVerifies) {
  const std::vector<Hash> leaves = SyntheticLeaves(kSweep);
  ForEverySize(leaves, [&](uint64_t n, SubtreeStore& store) {
    const Hash second = RefMth(std::span(leaves).first(n));
    for (uint64_t m = 0; m <= n; ++m) {
      store.ResetReads();
      auto proof = ConsistencyProof(m, n, store.Getter());
      ASSERT_TRUE(proof.ok()) << m << " to " << n << ": " << proof.status().ToString();
      EXPECT_LE(store.reads(), MaxReads(n)) << m << " to " << n;
      const Proof expected = m == 0 ? Proof{} : RefProof(m, std::span(leaves).first(n));
      EXPECT_EQ(*proof, expected) << m << " to " << n;
      const Hash first = RefMth(std::span(leaves).first(m));
      const Status verified = VerifyConsistency(m, n, first, second, *proof);
      EXPECT_TRUE(verified.ok()) << m << " to " << n << ": " << verified.ToString();
    }
  });
}

TEST(MerkleProofTest, PersistedSubtreesGiveEveryHistoricalRoot) {
  const std::vector<Hash> leaves = SyntheticLeaves(200);
  SubtreeStore store;
  Frontier frontier;
  for (const Hash& leaf : leaves) {
    std::vector<Subtree> completed;
    ASSERT_TRUE(frontier.Append(leaf, &completed).ok());
    store.Put(completed);
  }
  for (uint64_t n = 0; n <= leaves.size(); ++n) {
    store.ResetReads();
    auto root = RootFromSubtrees(n, store.Getter());
    ASSERT_TRUE(root.ok()) << n;
    EXPECT_EQ(*root, RefMth(std::span(leaves).first(n))) << n;
    EXPECT_EQ(store.reads(), std::popcount(n)) << n;
  }
}

TEST(MerkleProofTest, ProofGenerationRejectsImpossibleSizes) {
  SubtreeStore store = CtStore();
  EXPECT_EQ(InclusionProof(8, 8, store.Getter()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(InclusionProof(0, 0, store.Getter()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(6, 5, store.Getter()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ConsistencyProof(0, 8, store.Getter())->empty());
  EXPECT_TRUE(ConsistencyProof(8, 8, store.Getter())->empty());
  EXPECT_TRUE(ConsistencyProof(0, 0, store.Getter())->empty());
}

TEST(MerkleProofTest, GetterErrorsArePassedThrough) {
  const SubtreeHashGetter failing = [](const NodeId&) -> StatusOr<Hash> {
    return Unavailable("store closed");
  };
  EXPECT_EQ(InclusionProof(3, 7, failing).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(ConsistencyProof(3, 7, failing).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(RootFromSubtrees(7, failing).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Frontier::Load(7, failing).status().code(), StatusCode::kUnavailable);
  // A missing subtree is reported, not papered over.
  SubtreeStore empty;
  EXPECT_EQ(InclusionProof(0, 2, empty.Getter()).status().code(), StatusCode::kNotFound);
}

// A tree of 2^64 - 1 identical leaves: the hash of a complete subtree depends
// only on its level, so any size can be served without storing anything.
TEST(MerkleProofTest, ProofsForHugeTreesNeedLogarithmicReadsAndVerify) {
  std::vector<Hash> by_level{LeafHash("same entry")};
  while (by_level.size() < 64) by_level.push_back(NodeHash(by_level.back(), by_level.back()));
  int reads = 0;
  const SubtreeHashGetter getter = [&](const NodeId& id) -> StatusOr<Hash> {
    ++reads;
    return by_level.at(id.level);
  };
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (uint64_t n :
       {uint64_t{10'000'000}, uint64_t{1} << 63, (uint64_t{1} << 63) + 1, kMax - 1, kMax}) {
    const Hash root = *RootFromSubtrees(n, getter);
    for (uint64_t i : {uint64_t{0}, n / 3, n / 2, n - 2, n - 1}) {
      reads = 0;
      auto proof = InclusionProof(i, n, getter);
      ASSERT_TRUE(proof.ok());
      EXPECT_LE(reads, 2 * 64);
      EXPECT_TRUE(VerifyInclusion(by_level[0], i, n, *proof, root).ok()) << i << " in " << n;
    }
    for (uint64_t m : {uint64_t{1}, uint64_t{3}, n / 3, n / 2, n - 1}) {
      reads = 0;
      auto proof = ConsistencyProof(m, n, getter);
      ASSERT_TRUE(proof.ok());
      EXPECT_LE(reads, 2 * 64 + 1);
      const Status verified = VerifyConsistency(m, n, *RootFromSubtrees(m, getter), root, *proof);
      EXPECT_TRUE(verified.ok()) << m << " to " << n << ": " << verified.ToString();
    }
  }
}

// ---- verification rejects anything else ------------------------------------

TEST(MerkleVerifyTest, TamperedInclusionProofsAreRejected) {
  const std::vector<Hash> leaves = SyntheticLeaves(kSweep + 1);
  std::vector<Hash> roots;
  for (uint64_t n = 0; n <= leaves.size(); ++n) roots.push_back(RefMth(std::span(leaves).first(n)));
  const Hash extra = LeafHash("not in the tree");
  for (uint64_t n = 1; n <= kSweep; ++n) {
    for (uint64_t i = 0; i < n; ++i) {
      const Proof proof = RefPath(i, std::span(leaves).first(n));
      ASSERT_TRUE(VerifyInclusion(leaves[i], i, n, proof, roots[n]).ok());
      for (const auto& [what, bad] : Tampered(proof, extra)) {
        EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, bad, roots[n]).ok())
            << what << ", " << i << " in " << n;
      }
      auto rejects = [&](const char* what, const Hash& leaf, uint64_t index, uint64_t size,
                         const Hash& root) {
        EXPECT_FALSE(VerifyInclusion(leaf, index, size, proof, root).ok())
            << what << ", " << i << " in " << n;
      };
      if (i > 0) rejects("index - 1", leaves[i], i - 1, n, roots[n]);
      if (i + 1 < n) rejects("index + 1", leaves[i], i + 1, n, roots[n]);
      rejects("index + size", leaves[i], i + n, n, roots[n]);
      rejects("size + 1", leaves[i], i, n + 1, roots[n + 1]);
      if (i + 1 < n) rejects("size - 1", leaves[i], i, n - 1, roots[n - 1]);
      rejects("size * 2", leaves[i], i, 2 * n, roots[n]);
      if (n / 2 > i) rejects("size / 2", leaves[i], i, n / 2, roots[n]);
      rejects("wrong root", leaves[i], i, n, Flipped(roots[n]));
      rejects("empty root", leaves[i], i, n, EmptyRoot());
      rejects("wrong leaf", extra, i, n, roots[n]);
    }
  }
}

TEST(MerkleVerifyTest, TamperedConsistencyProofsAreRejected) {
  const std::vector<Hash> leaves = SyntheticLeaves(kSweep + 1);
  std::vector<Hash> roots;
  for (uint64_t n = 0; n <= leaves.size(); ++n) roots.push_back(RefMth(std::span(leaves).first(n)));
  for (uint64_t n = 2; n <= kSweep; ++n) {
    for (uint64_t m = 1; m < n; ++m) {
      const Proof proof = RefProof(m, std::span(leaves).first(n));
      ASSERT_TRUE(VerifyConsistency(m, n, roots[m], roots[n], proof).ok());
      for (const Hash& extra : {roots[m], roots[n], LeafHash("not in the tree")}) {
        for (const auto& [what, bad] : Tampered(proof, extra)) {
          EXPECT_FALSE(VerifyConsistency(m, n, roots[m], roots[n], bad).ok())
              << what << ", " << m << " to " << n;
        }
      }
      auto rejects = [&](const char* what, uint64_t first, uint64_t second, const Hash& first_root,
                         const Hash& second_root) {
        EXPECT_FALSE(VerifyConsistency(first, second, first_root, second_root, proof).ok())
            << what << ", " << m << " to " << n;
      };
      rejects("first - 1", m - 1, n, roots[m - 1], roots[n]);
      if (m + 1 < n) rejects("first + 1", m + 1, n, roots[m + 1], roots[n]);
      rejects("first ^ 2", m ^ 2, n, roots[m], roots[n]);
      if (m + 1 < n) rejects("second - 1", m, n - 1, roots[m], roots[n - 1]);
      rejects("second + 1", m, n + 1, roots[m], roots[n + 1]);
      rejects("second * 2", m, 2 * n, roots[m], roots[n]);
      rejects("wrong first root", m, n, Flipped(roots[m]), roots[n]);
      rejects("wrong second root", m, n, roots[m], Flipped(roots[n]));
      rejects("swapped roots", m, n, roots[n], roots[m]);
      EXPECT_FALSE(VerifyConsistency(m, n, roots[m], roots[n], {}).ok()) << m << " to " << n;
    }
  }
}

TEST(MerkleVerifyTest, ImpossibleSizesAndTrivialCasesAreDecidedWithoutHashes) {
  const Hash a = LeafHash("a");
  const Hash b = LeafHash("b");
  const Proof none;
  const Proof one{a};
  // Inclusion: the index must lie inside the tree.
  EXPECT_EQ(VerifyInclusion(a, 0, 0, none, a).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyInclusion(a, 1, 1, none, a).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RootFromInclusionProof(a, 2, 1, none).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(VerifyInclusion(a, 0, 1, none, a).ok());
  EXPECT_EQ(VerifyInclusion(a, 0, 1, none, b).code(), StatusCode::kDataLoss);
  EXPECT_EQ(VerifyInclusion(a, 0, 1, one, a).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyInclusion(a, 0, 2, none, a).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyInclusion(a, 0, 2, one, a).code(), StatusCode::kDataLoss);
  // Consistency: sizes never shrink; equal sizes need equal roots; the empty
  // tree is a prefix of everything but has a fixed root.
  EXPECT_EQ(VerifyConsistency(2, 1, a, b, none).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(VerifyConsistency(3, 3, a, a, none).ok());
  EXPECT_EQ(VerifyConsistency(3, 3, a, b, none).code(), StatusCode::kDataLoss);
  EXPECT_EQ(VerifyConsistency(3, 3, a, a, one).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(VerifyConsistency(0, 5, EmptyRoot(), b, none).ok());
  EXPECT_TRUE(VerifyConsistency(0, 0, EmptyRoot(), EmptyRoot(), none).ok());
  EXPECT_EQ(VerifyConsistency(0, 5, a, b, none).code(), StatusCode::kDataLoss);
  EXPECT_EQ(VerifyConsistency(0, 5, EmptyRoot(), b, one).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyConsistency(1, 2, a, b, none).code(), StatusCode::kInvalidArgument);
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(VerifyInclusion(a, kMax, kMax, none, a).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyConsistency(kMax, kMax - 1, a, b, none).code(), StatusCode::kInvalidArgument);
}

TEST(MerkleVerifyTest, FailuresNameTheOperationAndSizes) {
  const Hash a = LeafHash("a");
  const Status st = VerifyInclusion(a, 5, 9, Proof{a}, a);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("inclusion proof for leaf 5 of tree size 9"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("1 hashes, 4 expected"), std::string::npos) << st.message();
  const Status wrong_root = VerifyConsistency(3, 7, a, a, Proof(4, a));
  EXPECT_EQ(wrong_root.code(), StatusCode::kDataLoss);
  EXPECT_NE(wrong_root.message().find("consistency proof from tree size 3 to 7"), std::string::npos)
      << wrong_root.message();
}

// ---- the frontier ----------------------------------------------------------

TEST(MerkleFrontierTest, AppendingOneByOneMatchesRootFromLeafHashes) {
  const std::vector<Hash> leaves = SyntheticLeaves(200);
  Frontier frontier;
  for (uint64_t n = 1; n <= leaves.size(); ++n) {
    std::vector<Subtree> completed;
    ASSERT_TRUE(frontier.Append(leaves[n - 1], &completed).ok());
    const Leaves tree = std::span(leaves).first(n);
    EXPECT_EQ(frontier.size(), n);
    EXPECT_EQ(frontier.Root(), RootFromLeafHashes(tree)) << n;
    EXPECT_EQ(frontier.Root(), RefMth(tree)) << n;
    EXPECT_EQ(frontier.border().size(), static_cast<size_t>(std::popcount(n)));
    // The subtrees reported are exactly those ending at leaf n - 1, smallest
    // first, each with the hash of its leaves.
    ASSERT_EQ(completed.size(), static_cast<size_t>(std::countr_zero(n)) + 1) << n;
    for (uint32_t level = 0; level < completed.size(); ++level) {
      const Subtree& s = completed[level];
      EXPECT_EQ(s.id, (NodeId{level, (n >> level) - 1})) << n;
      EXPECT_EQ(s.hash, RefMth(tree.subspan(s.id.index << level, uint64_t{1} << level))) << n;
    }
  }
}

TEST(MerkleFrontierTest, ReloadedFromPersistedSubtreesContinuesIdentically) {
  const std::vector<Hash> leaves = SyntheticLeaves(200);
  SubtreeStore store;
  Frontier original;
  for (uint64_t size = 0; size <= leaves.size(); ++size) {
    // "Restart" at this size: rebuild from the store and keep appending.
    store.ResetReads();
    auto reloaded = Frontier::Load(size, store.Getter());
    ASSERT_TRUE(reloaded.ok()) << size << ": " << reloaded.status().ToString();
    EXPECT_EQ(store.reads(), std::popcount(size));
    EXPECT_EQ(reloaded->size(), size);
    EXPECT_EQ(reloaded->border(), original.border());
    EXPECT_EQ(reloaded->Root(), original.Root());
    auto rebuilt = Frontier::FromBorder(size, original.border());
    ASSERT_TRUE(rebuilt.ok());
    for (uint64_t n = size; n < std::min<uint64_t>(size + 9, leaves.size()); ++n) {
      ASSERT_TRUE(reloaded->Append(leaves[n], nullptr).ok());
      ASSERT_TRUE(rebuilt->Append(leaves[n], nullptr).ok());
      EXPECT_EQ(reloaded->Root(), RefMth(std::span(leaves).first(n + 1))) << size << "+" << n;
      EXPECT_EQ(rebuilt->Root(), reloaded->Root());
    }
    if (size == leaves.size()) break;
    std::vector<Subtree> completed;
    ASSERT_TRUE(original.Append(leaves[size], &completed).ok());
    store.Put(completed);
  }
}

TEST(MerkleFrontierTest, BorderNodesAreTheCompleteSubtreesLargestFirst) {
  EXPECT_TRUE(Frontier::BorderNodes(0).empty());
  EXPECT_EQ(Frontier::BorderNodes(6), (std::vector<NodeId>{{2, 0}, {1, 2}}));
  EXPECT_EQ(Frontier::BorderNodes(7), (std::vector<NodeId>{{2, 0}, {1, 2}, {0, 6}}));
  EXPECT_EQ(Frontier::BorderNodes(8), (std::vector<NodeId>{{3, 0}}));
  EXPECT_EQ(Frontier::BorderNodes(std::numeric_limits<uint64_t>::max()).size(), 64u);
  // The CT reference compact trees: size 7 is NodeHashes [2][0], [1][2], [0][6].
  SubtreeStore store = CtStore();
  auto frontier = Frontier::Load(7, store.Getter());
  ASSERT_TRUE(frontier.ok());
  EXPECT_EQ(frontier->border(),
            (std::vector<Hash>{FromHex(kCtNodeHashes[2][0]), FromHex(kCtNodeHashes[1][2]),
                               FromHex(kCtNodeHashes[0][6])}));
  EXPECT_EQ(Hex(frontier->Root()), kCtRoots[7]);
}

TEST(MerkleFrontierTest, FromBorderRejectsTheWrongNumberOfHashes) {
  const Hash h = LeafHash("x");
  EXPECT_EQ(Frontier::FromBorder(6, {h}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Frontier::FromBorder(6, {h, h, h}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Frontier::FromBorder(0, {h}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Frontier::FromBorder(6, {h, h}).ok());
}

TEST(MerkleFrontierTest, AppendToAFullTreeFailsAndChangesNothing) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const Hash h = LeafHash("x");
  auto almost = Frontier::FromBorder(kMax - 1, std::vector<Hash>(63, h));
  ASSERT_TRUE(almost.ok());
  std::vector<Subtree> completed;
  ASSERT_TRUE(almost->Append(h, &completed).ok());
  EXPECT_EQ(almost->size(), kMax);
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].id, (NodeId{0, kMax - 1}));
  const Hash root = almost->Root();
  completed.clear();
  EXPECT_EQ(almost->Append(h, &completed).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(completed.empty());
  EXPECT_EQ(almost->size(), kMax);
  EXPECT_EQ(almost->Root(), root);
}

}  // namespace
}  // namespace geoledger::audit
