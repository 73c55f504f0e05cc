#include "audit/merkle.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <string>

namespace geoledger::audit {
namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;
constexpr uint32_t kMaxLevels = 64;

// Names the operation and the sizes in error messages.
std::string InclusionWhat(uint64_t index, uint64_t tree_size) {
  return "inclusion proof for leaf " + std::to_string(index) + " of tree size " +
         std::to_string(tree_size);
}
std::string ConsistencyWhat(uint64_t m, uint64_t n) {
  return "consistency proof from tree size " + std::to_string(m) + " to " + std::to_string(n);
}

// The complete subtrees covering leaves [begin, end), largest first. `begin`
// must be a multiple of a power of two greater than end - begin, which holds
// for 0 and for the first leaf of any sibling subtree; the cover is then one
// subtree per set bit of end - begin.
std::vector<NodeId> RangeNodes(uint64_t begin, uint64_t end) {
  std::vector<NodeId> nodes;
  const uint64_t count = end - begin;
  for (uint32_t level = kMaxLevels; level-- > 0;) {
    const uint64_t width = uint64_t{1} << level;
    if ((count & width) == 0) continue;
    nodes.push_back(NodeId{level, begin >> level});
    begin += width;
  }
  return nodes;
}

// MTH of a range from the hashes of its RangeNodes, largest first: RFC 9162
// splits off the largest power of two on the left, so the fold runs right to
// left.
Hash FoldBorder(std::span<const Hash> border) {
  Hash root = border.back();
  for (size_t i = border.size() - 1; i-- > 0;) root = NodeHash(border[i], root);
  return root;
}

StatusOr<Hash> RangeRoot(uint64_t begin, uint64_t end, const SubtreeHashGetter& getter) {
  const std::vector<NodeId> nodes = RangeNodes(begin, end);
  if (nodes.empty()) return EmptyRoot();
  std::vector<Hash> hashes;
  hashes.reserve(nodes.size());
  for (const NodeId& id : nodes) {
    GL_ASSIGN_OR_RETURN(Hash hash, getter(id));
    hashes.push_back(hash);
  }
  return FoldBorder(hashes);
}

// Appends the audit path of the complete subtree (level, node) in the tree of
// `tree_size` leaves: its sibling at each level up to the root, leaf side
// first. A left sibling is always complete. A right sibling is complete,
// absent (the subtree is carried up unchanged, RFC 9162 splits at the largest
// power of two) or, at most once, the partial subtree on the right border,
// whose hash is folded from its own complete subtrees.
Status AppendAuditPath(uint32_t level, uint64_t node, uint64_t tree_size,
                       const SubtreeHashGetter& getter, std::vector<Hash>* proof) {
  const uint64_t last = tree_size - 1;
  for (; level < kMaxLevels && (last >> level) != 0; ++level, node >>= 1) {
    const uint64_t sibling = node ^ 1;
    const uint64_t begin = sibling << level;  // no overflow: sibling < 2^(64 - level)
    if (sibling > node && begin >= tree_size) continue;
    if (sibling < node || tree_size - begin >= (uint64_t{1} << level)) {
      GL_ASSIGN_OR_RETURN(Hash hash, getter(NodeId{level, sibling}));
      proof->push_back(hash);
    } else {
      GL_ASSIGN_OR_RETURN(Hash hash, RangeRoot(begin, tree_size, getter));
      proof->push_back(hash);
    }
  }
  return Status::Ok();
}

// How many hashes the RFC 9162 verification loops consume from state (fn, sn)
// before sn reaches 0: the only proof length that can verify.
size_t PathLength(uint64_t fn, uint64_t sn) {
  size_t length = 0;
  for (; sn != 0; ++length) {
    if ((fn & 1) != 0 || fn == sn) {
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    }
    fn >>= 1;
    sn >>= 1;
  }
  return length;
}

Status WrongLength(const std::string& what, size_t got, size_t want) {
  return InvalidArgument(what + ": proof has " + std::to_string(got) + " hashes, " +
                         std::to_string(want) + " expected");
}

}  // namespace

Hash LeafHash(std::string_view leaf_bytes) {
  const char prefix = static_cast<char>(kLeafPrefix);
  return crypto::Sha256({std::string_view(&prefix, 1), leaf_bytes});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  std::array<char, 1 + 2 * kHashBytes> buffer;
  buffer[0] = static_cast<char>(kNodePrefix);
  std::copy(left.begin(), left.end(), buffer.begin() + 1);
  std::copy(right.begin(), right.end(), buffer.begin() + 1 + kHashBytes);
  return crypto::Sha256(std::string_view(buffer.data(), buffer.size()));
}

Hash EmptyRoot() { return crypto::Sha256(""); }

StatusOr<Hash> HashFromBytes(std::string_view bytes) {
  if (bytes.size() != kHashBytes) {
    return InvalidArgument("merkle hash: " + std::to_string(bytes.size()) + " bytes, " +
                           std::to_string(kHashBytes) + " expected");
  }
  Hash hash;
  std::copy(bytes.begin(), bytes.end(), hash.begin());
  return hash;
}

Hash RootFromLeafHashes(std::span<const Hash> leaf_hashes) {
  Frontier frontier;
  // A span never holds 2^64 - 1 hashes, so Append cannot fail here.
  for (const Hash& leaf : leaf_hashes) frontier.Append(leaf, nullptr).IgnoreError();
  return frontier.Root();
}

StatusOr<Hash> RootFromSubtrees(uint64_t tree_size, const SubtreeHashGetter& getter) {
  return RangeRoot(0, tree_size, getter);
}

StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t tree_size,
                                           const SubtreeHashGetter& getter) {
  if (index >= tree_size) {
    return InvalidArgument(InclusionWhat(index, tree_size) +
                           ": leaf index is not below the tree size");
  }
  std::vector<Hash> proof;
  GL_RETURN_IF_ERROR(AppendAuditPath(0, index, tree_size, getter, &proof));
  return proof;
}

StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t m, uint64_t n,
                                             const SubtreeHashGetter& getter) {
  if (m > n) {
    return InvalidArgument(ConsistencyWhat(m, n) + ": first tree size exceeds the second");
  }
  std::vector<Hash> proof;
  if (m == 0 || m == n) return proof;
  // The smallest complete subtree on the first tree's right border is complete
  // in both trees. SUBPROOF reduces to it followed by its audit path in the
  // second tree; when the first tree is itself complete the verifier already
  // holds that subtree's hash (its root), so it is left out.
  const auto level = static_cast<uint32_t>(std::countr_zero(m));
  const uint64_t node = (m >> level) - 1;
  if (!std::has_single_bit(m)) {
    GL_ASSIGN_OR_RETURN(Hash hash, getter(NodeId{level, node}));
    proof.push_back(hash);
  }
  GL_RETURN_IF_ERROR(AppendAuditPath(level, node, n, getter, &proof));
  return proof;
}

// RFC 9162 §2.1.3.2, step by step.
StatusOr<Hash> RootFromInclusionProof(const Hash& leaf_hash, uint64_t index, uint64_t tree_size,
                                      std::span<const Hash> proof) {
  const std::string what = InclusionWhat(index, tree_size);
  if (index >= tree_size) return InvalidArgument(what + ": leaf index is not below the tree size");
  const size_t want = PathLength(index, tree_size - 1);
  if (proof.size() != want) return WrongLength(what, proof.size(), want);

  uint64_t fn = index;
  uint64_t sn = tree_size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return WrongLength(what, proof.size(), want);
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return WrongLength(what, proof.size(), want);
  return r;
}

Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t tree_size,
                       std::span<const Hash> proof, const Hash& root) {
  GL_ASSIGN_OR_RETURN(Hash computed, RootFromInclusionProof(leaf_hash, index, tree_size, proof));
  if (computed != root) {
    return DataLoss(InclusionWhat(index, tree_size) +
                    ": the proof does not lead to the given root");
  }
  return Status::Ok();
}

// RFC 9162 §2.1.4.2, step by step, for 0 < m < n; the two trivial cases first.
Status VerifyConsistency(uint64_t m, uint64_t n, const Hash& first_root, const Hash& second_root,
                         std::span<const Hash> proof) {
  const std::string what = ConsistencyWhat(m, n);
  if (m > n) return InvalidArgument(what + ": first tree size exceeds the second");
  if (m == 0 || m == n) {
    if (!proof.empty()) return WrongLength(what, proof.size(), 0);
    const Hash& expected = m == 0 ? EmptyRoot() : second_root;
    if (first_root != expected) {
      return DataLoss(what + (m == 0 ? ": first root is not the empty-tree root"
                                     : ": equal sizes with different roots"));
    }
    return Status::Ok();
  }

  // Step 1: an empty proof never proves 0 < m < n.
  if (proof.empty()) return WrongLength(what, 0, 1);
  // Step 2: a complete first tree is its own first proof node.
  const bool prepend_first = std::has_single_bit(m);
  const Hash& seed = prepend_first ? first_root : proof.front();
  const std::span<const Hash> rest = prepend_first ? proof : proof.subspan(1);
  // Steps 3 and 4.
  uint64_t fn = m - 1;
  uint64_t sn = n - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  const size_t want = PathLength(fn, sn) + (prepend_first ? 0 : 1);
  if (proof.size() != want) return WrongLength(what, proof.size(), want);

  // Step 5.
  Hash fr = seed;
  Hash sr = seed;
  // Step 6.
  for (const Hash& c : rest) {
    if (sn == 0) return WrongLength(what, proof.size(), want);
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  // Step 7.
  if (sn != 0) return WrongLength(what, proof.size(), want);
  if (fr != first_root) return DataLoss(what + ": the proof does not lead to the first root");
  if (sr != second_root) return DataLoss(what + ": the proof does not lead to the second root");
  return Status::Ok();
}

std::vector<NodeId> Frontier::BorderNodes(uint64_t size) { return RangeNodes(0, size); }

StatusOr<Frontier> Frontier::FromBorder(uint64_t size, std::vector<Hash> border) {
  const auto want = static_cast<size_t>(std::popcount(size));
  if (border.size() != want) {
    return InvalidArgument("merkle frontier for tree size " + std::to_string(size) + ": " +
                           std::to_string(border.size()) + " border hashes, " +
                           std::to_string(want) + " expected");
  }
  return Frontier(size, std::move(border));
}

StatusOr<Frontier> Frontier::Load(uint64_t size, const SubtreeHashGetter& getter) {
  std::vector<Hash> border;
  for (const NodeId& id : BorderNodes(size)) {
    GL_ASSIGN_OR_RETURN(Hash hash, getter(id));
    border.push_back(hash);
  }
  return Frontier(size, std::move(border));
}

Status Frontier::Append(const Hash& leaf_hash, std::vector<Subtree>* completed) {
  if (size_ == std::numeric_limits<uint64_t>::max()) {
    return FailedPrecondition("merkle frontier: tree is full at size " + std::to_string(size_));
  }
  // Each set low bit of the old size is a border subtree of that level which
  // the new leaf's subtree now completes into its parent.
  Hash hash = leaf_hash;
  NodeId id{0, size_};
  if (completed != nullptr) completed->push_back(Subtree{id, hash});
  while ((id.index & 1) != 0) {
    hash = NodeHash(border_.back(), hash);
    border_.pop_back();
    id = NodeId{id.level + 1, id.index >> 1};
    if (completed != nullptr) completed->push_back(Subtree{id, hash});
  }
  border_.push_back(hash);
  ++size_;
  return Status::Ok();
}

Hash Frontier::Root() const { return border_.empty() ? EmptyRoot() : FoldBorder(border_); }

}  // namespace geoledger::audit
