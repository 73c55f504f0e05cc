// Where the in-process benchmarks put their data, and what file system that
// is (durable-write figures are meaningless on tmpfs). Shared by ledger_bench
// and keyring_bench.
#pragma once

#include <sys/vfs.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace geoledger::bench {

// $GEOLEDGER_BENCH_TMPDIR, else $TMPDIR, else /tmp.
inline std::string BenchTmpBase() {
  for (const char* var : {"GEOLEDGER_BENCH_TMPDIR", "TMPDIR"})
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') return v;
  return "/tmp";
}

// The file system type of `path` by name where known, else its magic number.
inline std::string FsTypeOf(const std::string& path) {
  struct statfs s;
  if (statfs(path.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794c7630: return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

}  // namespace geoledger::bench
