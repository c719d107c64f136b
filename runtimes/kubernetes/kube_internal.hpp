#pragma once

// Pure helpers of the Kubernetes API client, apart so that unit tests reach
// them: the token bucket of the rate limiter, the parsed server URL, query
// encoding and the kubeconfig parser on text. No Beast type here.

#include "runtimes/kubernetes/kube_api.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

namespace osb::runtimes::kubernetes {

/// A token bucket with client-go's semantics (golang.org/x/time/rate as
/// used by flowcontrol.NewTokenBucketRateLimiter): `burst` tokens at
/// start, refilled at `qps` per second; a request takes one token and waits
/// until the bucket would have had it. Reservations queue: tokens go
/// negative, so N requests at once are spread 1/qps apart. qps <= 0 means
/// unlimited.
class token_bucket {
public:
  using clock = std::chrono::steady_clock;

  token_bucket(double qps, int burst, clock::time_point now)
    : qps_(qps), burst_(std::max(burst, 1)), tokens_(burst_), last_(now) {
    // nop
  }

  /// Takes one token at `now`; returns how long the caller must wait before
  /// it may send (zero when a token was there).
  clock::duration reserve(clock::time_point now) {
    if (qps_ <= 0)
      return clock::duration::zero();
    if (now > last_) {
      auto elapsed = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(static_cast<double>(burst_), tokens_ + elapsed * qps_);
      last_ = now;
    }
    tokens_ -= 1;
    if (tokens_ >= 0)
      return clock::duration::zero();
    return std::chrono::duration_cast<clock::duration>(
      std::chrono::duration<double>(-tokens_ / qps_));
  }

  bool unlimited() const {
    return qps_ <= 0;
  }

private:
  double qps_;
  int burst_;
  double tokens_;
  clock::time_point last_;
};

/// "https://host:6443/prefix" taken apart.
struct server_url {
  bool tls = false;
  std::string host; ///< without brackets for IPv6
  std::string port;
  std::string prefix; ///< path prefix without trailing slash ("" for none)
};

/// Parses an API server URL (http or https; default ports 80/443); an
/// error message when it is not one.
expected<server_url> parse_server_url(std::string_view url);

/// Percent-encodes a query parameter value (RFC 3986 unreserved kept).
std::string query_escape(std::string_view x);

/// A token file's content without surrounding blanks and newlines.
std::string_view trim_token(std::string_view x);

/// Parses kubeconfig text (YAML or JSON) read from `path`; `path` names the
/// file in errors and anchors relative file paths.
expected<kube_endpoint> parse_kubeconfig(std::string_view text,
                                         const std::string& path,
                                         const std::string& context);

} // namespace osb::runtimes::kubernetes
