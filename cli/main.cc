// geoledger: command-line client for geoledgerd's administration API.
//
// Exit status: 0 success; 1 the server answered with an error (its problem
// document goes to stderr) or another failure; 2 usage error (bad flags,
// server URL, TLS files or token source); 3 the server could not be reached
// or the exchange failed (resolve, connect, TLS, timeout, malformed answer).
//
// Answers go to stdout as indented JSON; diagnostics go to stderr. The API
// token is sent only in the Authorization header and never printed.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/audit_verify.h"
#include "cli/http_client.h"
#include "cli/output.h"
#include "cli/token_source.h"
#include "common/status.h"

#ifndef GEOLEDGER_VERSION
#define GEOLEDGER_VERSION "unknown"
#endif

namespace geoledger::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

constexpr char kDefaultServer[] = "http://127.0.0.1:8080";

struct GlobalOptions {
  std::string server = kDefaultServer;
  std::string token_file;
  std::string ca_file, cert_file, key_file;
};

void PrintError(const std::string& message) { std::fprintf(stderr, "geoledger: %s\n", message.c_str()); }

// Percent-encodes one path segment (everything but RFC 3986 unreserved).
std::string EncodePathSegment(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

// Sends one authenticated API request and reports the outcome; returns the
// process exit status. `on_success` (optional) adds a note on stderr.
int CallApi(const GlobalOptions& g, const std::string& method, const std::string& path,
            const std::optional<nlohmann::json>& body, const char* on_success = nullptr) {
  auto url = ParseServerUrl(g.server);
  if (!url.ok()) {
    PrintError(url.status().message());
    return kExitUsage;
  }
  HttpClientOptions options;
  options.ca_file = g.ca_file;
  options.cert_file = g.cert_file;
  options.key_file = g.key_file;
  auto client = HttpClient::Create(*url, std::move(options));
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }
  auto token = ResolveToken(g.token_file, std::getenv("GEOLEDGER_TOKEN"));
  if (!token.ok()) {
    PrintError(token.status().message());
    return kExitUsage;
  }
  if (!url->tls && !url->IsLoopback())
    PrintError("warning: sending the API token unencrypted to " + url->ToString() + "; use https://");

  HttpRequest request;
  request.method = method;
  request.path = path;
  request.headers = {{"Authorization", "Bearer " + *token},
                     {"Accept", "application/json, application/problem+json"},
                     {"User-Agent", "geoledger-cli/" GEOLEDGER_VERSION}};
  if (body) {
    try {
      request.body = body->dump();  // strict: throws on invalid UTF-8
    } catch (const nlohmann::json::exception&) {
      PrintError("arguments must be valid UTF-8");
      return kExitUsage;
    }
    request.headers.emplace_back("Content-Type", "application/json");
  }

  auto response = (*client)->Send(request);
  if (!response.ok()) {
    PrintError(response.status().message());
    return kExitUnreachable;
  }
  if (response->status < 200 || response->status > 299) {
    std::fputs(("geoledger: " + DescribeHttpError(*response)).c_str(), stderr);
    return kExitFailed;
  }
  std::fputs(FormatBody(response->body).c_str(), stdout);
  if (on_success != nullptr) PrintError(on_success);
  return std::fflush(stdout) == 0 ? kExitOk : kExitFailed;
}

int Main(int argc, char** argv) {
  CLI::App app{"geoledger — command-line client for geoledgerd"};
  app.set_version_flag("--version", "geoledger " GEOLEDGER_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand

  GlobalOptions g;
  app.add_option("--server", g.server, "geoledgerd base URL, http://HOST:PORT or https://HOST:PORT")
      ->envname("GEOLEDGER_SERVER")
      ->capture_default_str();
  app.add_option("--token-file", g.token_file,
                 "File holding the API token (mode 0600 or stricter); without it the token is read "
                 "from the GEOLEDGER_TOKEN environment variable")
      ->envname("GEOLEDGER_TOKEN_FILE");
  app.add_option("--cacert", g.ca_file, "PEM CA bundle that signs the server certificate (default: system store)");
  app.add_option("--cert", g.cert_file, "PEM client certificate for mutual TLS");
  app.add_option("--key", g.key_file, "PEM private key for --cert (default: read from the --cert file)");

  CLI::App* token = app.add_subcommand("token", "Manage API tokens (needs the 'admin' scope)");
  token->require_subcommand(1);

  std::string create_name, create_tenant;
  std::vector<std::string> create_scopes;
  CLI::App* create = token->add_subcommand("create", "Create a token; the answer holds the token, shown only once");
  create->add_option("NAME", create_name, "Unique token name, 1-64 characters of [A-Za-z0-9._:-]")->required();
  create->add_option("--scope", create_scopes, "Scope to grant; repeat or separate with commas")
      ->required()
      ->allow_extra_args(false)  // one value per --scope, so NAME may follow it
      ->delimiter(',');
  create->add_option("--tenant", create_tenant, "Restrict the token to this tenant");

  CLI::App* list = token->add_subcommand("list", "List tokens (never their secrets)");

  std::string revoke_id;
  CLI::App* revoke = token->add_subcommand("revoke", "Revoke a token by id");
  revoke->add_option("ID", revoke_id, "Token id, as shown by 'token list'")->required();

  CLI::App* whoami = app.add_subcommand("whoami", "Show the token the CLI authenticates with");
  CLI::App* version = app.add_subcommand("version", "Print the CLI version");

  CLI::App* audit_cmd = app.add_subcommand("audit", "Work with audit log exports, offline");
  audit_cmd->require_subcommand(1);
  AuditVerifyOptions verify_opts;
  CLI::App* verify = audit_cmd->add_subcommand(
      "verify", "Verify an export: chain, every leaf, the tree and the checkpoint signature (no server needed)");
  verify->add_option("EXPORT", verify_opts.export_path, "Export file from GET /v1/audit/export")->required();
  verify->add_option("--public-key", verify_opts.public_key_path,
                     "The log's verifier key text (DATA_DIR/audit-public.key, GET /v1/audit/public-key)")
      ->required();
  verify->add_option("--checkpoint", verify_opts.checkpoint_path,
                     "A signed checkpoint obtained separately; it must match the export's end and root");
  std::string proof_path, cp_path, old_cp_path, key_path;
  VerifyInclusionOptions inclusion_opts;
  CLI::App* verify_inclusion = audit_cmd->add_subcommand(
      "verify-inclusion",
      "Verify that an entry is in a signed checkpoint's tree: hashes the entry itself and checks the "
      "GET /v1/audit/proof/inclusion answer from it to the signed root");
  verify_inclusion->add_option("PROOF", inclusion_opts.proof_path, "File with the proof JSON")->required();
  verify_inclusion
      ->add_option("--entry", inclusion_opts.entry_path,
                   "File with a GET /v1/audit/entries answer holding the proof's index; only the entry's "
                   "base64 bytes are used, hashed here")
      ->required();
  verify_inclusion->add_option("--checkpoint", inclusion_opts.checkpoint_path, "Signed checkpoint of the proof's tree size")
      ->required();
  verify_inclusion->add_option("--public-key", inclusion_opts.public_key_path, "The log's verifier key text")->required();
  CLI::App* verify_consistency = audit_cmd->add_subcommand(
      "verify-consistency", "Verify that a checkpoint extends an older one (GET /v1/audit/proof/consistency answer)");
  verify_consistency->add_option("PROOF", proof_path, "File with the proof JSON")->required();
  verify_consistency->add_option("--old-checkpoint", old_cp_path, "The earlier signed checkpoint")->required();
  verify_consistency->add_option("--checkpoint", cp_path, "The later signed checkpoint")->required();
  verify_consistency->add_option("--public-key", key_path, "The log's verifier key text")->required();
  // `evidence verify` arrives with the evidence-bundle work; until then it
  // does not exist, so scripts fail loudly instead of getting a false "verified".

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help/version to stdout or the error to stderr
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (version->parsed()) {
    std::printf("geoledger %s\n", GEOLEDGER_VERSION);
    return kExitOk;
  }
  if (verify->parsed()) return RunAuditVerify(verify_opts, stdout, stderr);
  if (verify_inclusion->parsed()) return RunVerifyInclusion(inclusion_opts, stdout, stderr);
  if (verify_consistency->parsed())
    return RunVerifyConsistency(proof_path, old_cp_path, cp_path, key_path, stdout, stderr);
  if (whoami->parsed()) return CallApi(g, "GET", "/v1/whoami", std::nullopt);
  if (list->parsed()) return CallApi(g, "GET", "/v1/admin/tokens", std::nullopt);
  if (create->parsed()) {
    nlohmann::json body = {{"name", create_name}, {"scopes", create_scopes}};
    if (create->count("--tenant") > 0) body["tenant"] = create_tenant;
    return CallApi(g, "POST", "/v1/admin/tokens", body,
                   "store the token now: the server keeps only its hash and cannot show it again");
  }
  if (revoke->parsed()) {
    if (revoke_id.empty() || revoke_id == "." || revoke_id == "..") {
      PrintError("ID must be a token id as shown by 'token list'");
      return kExitUsage;
    }
    return CallApi(g, "DELETE", "/v1/admin/tokens/" + EncodePathSegment(revoke_id), std::nullopt);
  }
  PrintError("no command given; see --help");  // unreachable: a subcommand is required
  return kExitUsage;
}

}  // namespace
}  // namespace geoledger::cli

int main(int argc, char** argv) {
  try {
    return geoledger::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "geoledger: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "geoledger: internal error\n");
  }
  return geoledger::cli::kExitFailed;
}
