// opensandbox-egress: the egress sidecar. It owns the sandbox's network
// namespace (the sandbox joins it with network_mode=container:<sidecar>),
// redirects all DNS to its filtering proxy, enforces the policy with
// nftables and serves the policy API on :18080. See docs/egress.md.

#include "base/log.hpp"
#include "net/egress/api.hpp"
#include "net/egress/config.hpp"
#include "net/egress/dns_proxy.hpp"
#include "net/egress/http_server.hpp"
#include "net/egress/sidecar.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>

namespace asio = boost::asio;
using namespace osb::egress;

namespace {

std::string read_resolv_conf() {
  std::ifstream in{"/etc/resolv.conf"};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `fn` every `period` on the io_context.
void every(asio::steady_timer& timer, std::chrono::seconds period,
           std::function<void()> fn) {
  timer.expires_after(period);
  timer.async_wait([&timer, period, fn = std::move(fn)](auto ec) {
    if (ec)
      return;
    fn();
    every(timer, period, fn);
  });
}

} // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--version") == 0) {
      std::puts("opensandbox-egress 0.1.0");
      return 0;
    }
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::puts("usage: opensandbox-egress   (configured by OPENSANDBOX_EGRESS_* "
                "environment variables; see docs/egress.md)");
      return 0;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  // debug, info (default), warning, error.
  if (auto level = std::getenv("OPENSANDBOX_EGRESS_LOG_LEVEL"))
    osb::log::set_level(level);
  // resolv.conf as it is now, before anything is redirected.
  auto cfg = load_config(std::getenv, read_resolv_conf());
  for (auto& w : cfg.warnings)
    OSB_WARN("egress", "", "", w);
  std::string error;
  auto initial = initial_policy(cfg, &error);
  if (!initial) {
    OSB_ERROR("egress", "", "", error);
    return 1;
  }
  auto firewall_env = std::getenv("OPENSANDBOX_EGRESS_FIREWALL");
  bool firewall = !(firewall_env && std::strcmp(firewall_env, "off") == 0);
  std::ostringstream ups;
  for (auto& u : cfg.upstreams)
    ups << (ups.tellp() > 0 ? "," : "") << to_string(u);
  OSB_INFO("egress", "", "",
           "starting: enforcement="
             << to_string(cfg.mode) << " mode=" << mode_of(*initial)
             << " rules=" << initial->egress.size()
             << " upstreams=" << ups.str()
             << " auth=" << (cfg.token.empty() ? "off" : "on"));
  asio::io_context io{1};
  sidecar state{cfg, std::move(*initial), firewall};
  // The DNS proxy and the timers use `state` on the io_context's thread,
  // the policy API on its connections' threads: all under this lock.
  std::mutex state_mutex;
  dns_proxy::options dopts;
  dopts.upstreams = cfg.upstreams;
  dopts.port = cfg.dns_port;
  dopts.mark = firewall ? cfg.mark : 0;
  dopts.timeout = cfg.upstream_timeout;
  dns_proxy proxy{io, dopts,
                  [&](const std::string& name) {
                    std::lock_guard<std::mutex> guard{state_mutex};
                    return state.allowed(name);
                  },
                  [&](const std::string& name,
                      const std::vector<dns::answer_address>& xs) {
                    std::lock_guard<std::mutex> guard{state_mutex};
                    state.learn(name, xs);
                  }};
  // The proxy listens before the redirect exists: no query is ever lost.
  if (!proxy.start(&error)) {
    OSB_ERROR("egress", "", "", "DNS proxy: " << error);
    return 1;
  }
  if (!state.install(&error)) {
    auto hint = error.find("not permitted") != std::string::npos
                  ? " (the sidecar needs CAP_NET_ADMIN)"
                  : "";
    OSB_ERROR("egress", "", "", "firewall: " << error << hint);
    return 1;
  }
  policy_api::options aopts;
  aopts.token = cfg.token;
  aopts.mode = cfg.mode;
  aopts.max_rules = cfg.max_rules;
  policy_api api{aopts, state};
  http_server server{api, state_mutex};
  if (!server.start(cfg.http_host, cfg.http_port, &error)) {
    OSB_ERROR("egress", "", "", "policy API: " << error);
    return 1;
  }
  asio::steady_timer expiry{io};
  every(expiry, std::chrono::seconds{5}, [&] {
    std::lock_guard<std::mutex> guard{state_mutex};
    state.expire();
  });
  asio::steady_timer always{io};
  every(always, std::chrono::seconds{60}, [&] {
    std::lock_guard<std::mutex> guard{state_mutex};
    state.reload_always_rules();
  });
  asio::signal_set signals{io, SIGTERM, SIGINT};
  signals.async_wait([&](auto, int sig) {
    OSB_INFO("egress", "", "", "signal " << sig << ", exiting");
    io.stop();
  });
  OSB_INFO("egress", "", "",
           "ready: DNS proxy on 127.0.0.1:"
             << cfg.dns_port << ", policy API on " << cfg.http_host << ":"
             << cfg.http_port << (firewall ? "" : " (firewall off)"));
  io.run();
  server.stop();
  // Nothing to clean up: the namespace, and with it the rules, goes away
  // with the container.
  return 0;
}
