// geoledgerd: parses configuration, starts the service, waits for SIGTERM or
// SIGINT, drains and exits 0.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "common/log.h"
#include "server/config.h"
#include "server/service.h"

extern char** environ;

int main(int argc, char** argv) {
  using namespace geoledger;
  // Writes to a closed socket must fail with EPIPE, not kill the process.
  ::signal(SIGPIPE, SIG_IGN);
  // No core dumps: they could hold key material outside guarded memory.
  rlimit no_core{0, 0};
  if (::setrlimit(RLIMIT_CORE, &no_core) != 0 || ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    std::fprintf(stderr, "geoledgerd: cannot disable core dumps\n");
    return 1;
  }
  // Each HTTP connection holds two descriptors (Pistache's and the frontend's
  // own dup for writing answers): allow as many as the hard limit does.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &files);
  }
  // Every thread inherits this mask; the main thread takes the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto config = server::ParseConfig(argc, argv, environ);
  if (!config.ok()) {
    if (config.status().code() == StatusCode::kFailedPrecondition) {  // --help / --version
      std::fputs(config.status().message().c_str(), stdout);
      std::fputs("\n", stdout);
      return 0;
    }
    std::fprintf(stderr, "geoledgerd: %s\n", config.status().message().c_str());
    return 2;
  }
  log::Level level = log::Level::kInfo;
  log::ParseLevel(config->log_level, &level);
  log::SetLevel(level);

  auto service = server::Service::Start(*config);
  if (!service.ok()) {
    log::Error("startup failed", {{"error", service.status().ToString()}});
    return 1;
  }
  int sig = 0;
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP)
    log::Info("SIGHUP ignored: configuration is read only at start");
  log::Info("signal received", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*service)->Shutdown();
  return 0;
}
