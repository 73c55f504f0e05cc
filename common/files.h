// Durable file replacement for the small files geoledgerd keeps beside its
// database: tokens, public keys, policy bundles.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
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

// Reads the whole regular file at `path` through one descriptor: nullopt
// when nothing is there, kInternal ("read <path>: ...") for anything but a
// regular file (a directory would read as empty) or an I/O error. `st`,
// when given, receives the fstat of the file read, so a caller checking its
// mode or owner checks the bytes it got, not a file that replaced them.
StatusOr<std::optional<std::string>> ReadRegularFile(const std::string& path, struct stat* st = nullptr);

}  // namespace geoledger
