// geoledgerd configuration: flags, then GEOLEDGER_* environment variables,
// then an optional YAML file (--config), then built-in defaults. The first
// source that sets an option wins. Unknown keys and bad values are errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace geoledger::server {

struct ServerConfig {
  std::string data_dir;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::string region;
  std::string config_file;
  bool dev = false;

  int threads = 0;  // 0: one per core
  std::string log_level = "info";
  bool access_log = true;
  bool audit_verify_on_start = false;  // full O(n) audit log verification before ready

  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds keepalive_timeout{60'000};
  std::chrono::milliseconds drain_timeout{10'000};
  // Open connections before new ones get 503 and a close; 0: derived from the
  // descriptor limit (see EffectiveMaxConnections).
  size_t max_connections = 0;
  size_t max_connections_per_client = 0;

  std::string tls_cert, tls_key, tls_client_ca;  // PEM files; cert+key enable TLS

  double tenant_rate = 1000, tenant_burst = 2000;  // per tenant; rate 0 disables
  double token_rate = 20000, token_burst = 40000;  // per token; rate 0 disables

  // Residency decisions: "sync" answers once the decision's audit entry is
  // durable; "async" answers at once with a bounded queue.
  std::string decision_audit = "sync";
  size_t decision_audit_queue = 100000;  // decision events outstanding before 503
  size_t decision_audit_async_linger_ms = 2;  // async: how long an entry may wait to share a write, and a sync
  std::string policy_trusted_keys;       // file of trusted bundle-signing public keys

  bool tls_enabled() const { return !tls_cert.empty(); }
};

// Parses argv (argv[0] is the program). On --help, returns kFailedPrecondition
// with the help text as the message. `env` is consulted for GEOLEDGER_*
// variables (pass `environ`).
StatusOr<ServerConfig> ParseConfig(int argc, const char* const* argv, char** env);

// The connection cap to enforce: `configured`, or when it is 0, what the
// descriptor limit `nofile` allows (two descriptors per connection, 256 kept
// for storage, keys and logs), at least 16.
size_t EffectiveMaxConnections(size_t configured, uint64_t nofile);

// The reference table rendered as Markdown (for the README and --help).
std::string ConfigReferenceMarkdown();

}  // namespace geoledger::server
