// Durable file replacement for the small files geoledgerd keeps beside its
// database: tokens, public keys, policy bundles.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace geoledger {

// Writes `contents` to `path` so that a crash leaves the old file or the
// new one, never a mix: a temporary file of its own in the same directory
// (`path` + ".tmp.XXXXXX", so two writers of one path never write or rename
// each other's file), fsync, rename, fsync of the directory. The file gets
// `mode`.
Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode = 0600);

// Renames `from` to `to` and makes the rename durable: a rename is only once
// the directory entry is. An error after the rename itself (the directory's
// fsync) leaves `to` in place.
Status RenameDurably(const std::string& from, const std::string& to);

}  // namespace geoledger
