#pragma once

#include "net/egress/firewall.hpp"
#include "net/egress/policy.hpp"

#include <optional>
#include <string>

namespace osb::egress {

/// The name of the auth header.
inline constexpr std::string_view auth_header = "OPENSANDBOX-EGRESS-AUTH";

/// One HTTP request as the API sees it (transport-independent).
struct api_request {
  std::string method;
  /// Path with optional query ("/policy?x=1").
  std::string target;
  /// Value of OPENSANDBOX-EGRESS-AUTH, if present.
  std::optional<std::string> auth;
  std::string body;
};

/// One HTTP response.
struct api_response {
  int status = 200;
  std::string content_type;
  std::string body;
  /// Value of the Allow header for 405 answers.
  std::string allow;
};

/// Where the API reads and changes the user policy.
class policy_store {
public:
  virtual ~policy_store() = default;

  /// The user policy (what GET shows; without always-rules).
  virtual const policy& current() const = 0;

  /// Persists and enforces `next`, then makes it current. Returns the error
  /// text of a failure (answered with 500; the current policy is kept).
  virtual std::optional<std::string> commit(policy next) = 0;
};

/// The sidecar's HTTP API: /policy (GET, POST, PUT, PATCH, DELETE), /healthz,
/// /credential-vault*. Error bodies are plain text with a trailing newline,
/// success bodies JSON with a trailing newline (as Go's http.Error and
/// json.Encoder produce).
class policy_api {
public:
  struct options {
    /// Required in OPENSANDBOX-EGRESS-AUTH when not empty.
    std::string token;
    enforcement mode = enforcement::dns;
    /// Maximum number of rules after POST/PATCH; 0 = unlimited.
    size_t max_rules = 4096;
  };

  policy_api(options opts, policy_store& store)
    : opts_(std::move(opts)), store_(store) {
  }

  /// Answers one request. Not thread-safe: the server calls it under the
  /// sidecar's state lock, so mutations run one at a time.
  api_response handle(const api_request& req);

  /// Constant-time comparison against the configured token.
  bool authorized(const std::optional<std::string>& provided) const;

private:
  api_response get_policy();
  api_response post_policy(const std::string& body);
  api_response patch_policy(const std::string& body);
  api_response delete_policy(const std::string& body);
  api_response status(const policy& p, std::string_view reason,
                      bool with_enforcement = true);
  api_response commit(policy next);
  std::optional<api_response> check_limit(size_t count) const;

  options opts_;
  policy_store& store_;
};

/// A plain-text error response ("msg\n").
api_response text_error(int status, std::string_view msg);

} // namespace osb::egress
