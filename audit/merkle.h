// The audit ledger's Merkle tree, RFC 9162 §2.1 (Certificate Transparency
// v2): hashing, proofs, offline verification and the append frontier.
//
// Everything here is pure and storage-independent. The ledger persists, for
// every complete aligned subtree it has finished, that subtree's hash keyed by
// NodeId{level, index}: the subtree of 2^level leaves
// [index * 2^level, (index + 1) * 2^level). Proofs and historical roots are
// then assembled from O(log n) such reads through a SubtreeHashGetter, and a
// restart rebuilds the Frontier from at most 64 reads instead of rehashing
// every leaf.
//
// Thread-safety: the free functions keep no state and may be called from any
// number of threads at once; they call the getter they are given only on the
// calling thread, one read at a time. A Frontier is a plain value: const
// methods may run concurrently, anything else needs external synchronisation.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "crypto/hash.h"

namespace geoledger::audit {

inline constexpr size_t kHashBytes = crypto::kSha256Bytes;
// A leaf, node or root hash. crypto::AsView(hash) gives its raw bytes.
using Hash = crypto::Sha256Digest;

// SHA-256(0x00 || leaf_bytes): the hash of one entry as a leaf (RFC 9162 §2.1.1).
Hash LeafHash(std::string_view leaf_bytes);
// SHA-256(0x01 || left || right): the hash of an interior node.
Hash NodeHash(const Hash& left, const Hash& right);
// SHA-256 of the empty string: the root of the tree with no leaves.
Hash EmptyRoot();
// Copies exactly 32 raw bytes into a Hash; kInvalidArgument for any other length.
StatusOr<Hash> HashFromBytes(std::string_view bytes);

// MTH(D[n]) of RFC 9162 §2.1.1 over the given leaf hashes: EmptyRoot() for no
// leaves. O(n) hashing, O(log n) memory.
Hash RootFromLeafHashes(std::span<const Hash> leaf_hashes);

// A complete aligned subtree: the 2^level leaves starting at index * 2^level.
// Level 0 is a single leaf. level <= 63.
struct NodeId {
  uint32_t level = 0;
  uint64_t index = 0;
  auto operator<=>(const NodeId&) const = default;
};

// A complete subtree and its hash, as the ledger persists it.
struct Subtree {
  NodeId id;
  Hash hash;
};

// Returns the stored hash of a complete subtree. The functions below ask only
// for subtrees that lie entirely inside the tree size they were given; any
// error the getter returns (kNotFound, kUnavailable, kDataLoss, ...) is passed
// through to their caller unchanged.
using SubtreeHashGetter = std::function<StatusOr<Hash>(const NodeId&)>;

// The root of the first `tree_size` leaves, from at most 64 reads (one per set
// bit of tree_size). EmptyRoot() for tree_size 0, without any read.
StatusOr<Hash> RootFromSubtrees(uint64_t tree_size, const SubtreeHashGetter& getter);

// PATH(index, D[tree_size]) of RFC 9162 §2.1.3.1: the audit path of leaf
// `index` in the tree of the first `tree_size` leaves, leaf-side first.
// At most 2 * 64 getter reads (one per level, plus the complete subtrees of
// the one sibling on the right border, if any).
// kInvalidArgument unless index < tree_size; getter errors are passed through.
StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t tree_size,
                                           const SubtreeHashGetter& getter);

// PROOF(m, D[n]) of RFC 9162 §2.1.4.1: proves the tree of the first m leaves
// is a prefix of the tree of the first n. Empty for m == 0 and for m == n (the
// RFC defines 0 < m < n; both trivial cases need no hashes). At most 2 * 64 + 1
// getter reads. kInvalidArgument when m > n; getter errors are passed through.
StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t m, uint64_t n,
                                             const SubtreeHashGetter& getter);

// The root that `proof` yields for `leaf_hash` at `index` in a tree of
// `tree_size` leaves, computed as in RFC 9162 §2.1.3.2. kInvalidArgument when
// index >= tree_size or when the proof has more or fewer hashes than that
// position needs. Never fails on hash contents: compare the result yourself,
// or call VerifyInclusion.
StatusOr<Hash> RootFromInclusionProof(const Hash& leaf_hash, uint64_t index, uint64_t tree_size,
                                      std::span<const Hash> proof);

// OK when `proof` shows that `leaf_hash` is leaf `index` of the tree of
// `tree_size` leaves whose root is `root` (RFC 9162 §2.1.3.2). Otherwise
// kInvalidArgument for an impossible index or a proof of the wrong length, and
// kDataLoss when the proof is well-formed but yields another root.
Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t tree_size,
                       std::span<const Hash> proof, const Hash& root);

// OK when `proof` shows that the tree of m leaves with root `first_root` is a
// prefix of the tree of n leaves with root `second_root` (RFC 9162 §2.1.4.2 for
// 0 < m < n). For m == n the proof must be empty and the roots equal; for m == 0
// the proof must be empty and first_root must be EmptyRoot().
// kInvalidArgument when m > n or the proof has the wrong length for (m, n);
// kDataLoss when a recomputed root differs from the one supplied.
Status VerifyConsistency(uint64_t m, uint64_t n, const Hash& first_root, const Hash& second_root,
                         std::span<const Hash> proof);

// The right border of the tree: the hashes of the complete subtrees that
// together cover leaves [0, size), largest (leftmost) first, one per set bit
// of size, so never more than 64. This is all the state needed to append
// leaves and compute the current root.
class Frontier {
 public:
  // The empty tree.
  Frontier() = default;

  // The complete subtrees whose hashes make up the border of a tree of `size`
  // leaves, largest first.
  static std::vector<NodeId> BorderNodes(uint64_t size);

  // Rebuilds the frontier of a tree of `size` leaves from the hashes of
  // BorderNodes(size), in that order. kInvalidArgument when the count differs.
  static StatusOr<Frontier> FromBorder(uint64_t size, std::vector<Hash> border);

  // Rebuilds the frontier of a tree of `size` leaves by reading
  // BorderNodes(size) through `getter`; getter errors are passed through.
  static StatusOr<Frontier> Load(uint64_t size, const SubtreeHashGetter& getter);

  uint64_t size() const { return size_; }
  // Hashes of BorderNodes(size()), largest first.
  const std::vector<Hash>& border() const { return border_; }

  // Appends leaf number size() and appends to *completed (when not null) every
  // complete subtree this leaf finishes, smallest first: the leaf itself at
  // level 0, then one subtree per level it closes. These are what the ledger
  // must persist for proofs and for Load() to work later.
  // kFailedPrecondition when the tree already holds 2^64 - 1 leaves; nothing
  // changes then.
  Status Append(const Hash& leaf_hash, std::vector<Subtree>* completed);

  // MTH of the current tree: EmptyRoot() when empty.
  Hash Root() const;

 private:
  Frontier(uint64_t size, std::vector<Hash> border) : size_(size), border_(std::move(border)) {}

  uint64_t size_ = 0;
  std::vector<Hash> border_;
};

}  // namespace geoledger::audit
