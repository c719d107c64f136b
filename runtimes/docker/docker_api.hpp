#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"
#include "runtimes/docker/engine.hpp"

/// Pure helpers for the Docker Engine API: request targets and bodies,
/// response parsing and error mapping. No I/O, so they are unit-testable
/// without a daemon and keep the Beast TU small.
namespace osb::runtimes::docker {

/// The API version prefix of every request target (Docker 20.10).
inline constexpr std::string_view api_prefix = "/v1.41";

// -- daemon address -----------------------------------------------------------

/// Where the daemon listens.
struct host_address {
  enum class kind_t { unix_socket, tcp, unsupported };
  kind_t kind = kind_t::unix_socket;
  std::string path; ///< unix socket path
  std::string host; ///< tcp host (brackets stripped for IPv6)
  std::string port; ///< tcp port
  /// The address as given, for messages.
  std::string display;
  /// Why `kind == unsupported`.
  std::string error;
};

/// Parses "unix:///path", "tcp://host:port" (also "http://"), a bare
/// "/path". Empty means $DOCKER_HOST, else the default unix socket. ssh://,
/// npipe:// and https:// are reported as unsupported.
host_address parse_host(std::string_view docker_host);

// -- images -------------------------------------------------------------------

/// An image reference split the way `POST /images/create` wants it.
struct image_ref {
  /// Everything before the tag/digest, including a registry host[:port].
  std::string repository;
  /// A tag or a digest ("sha256:..."); "latest" when the ref has neither.
  std::string tag;
};

/// Splits "[host[:port]/]path[:tag][@digest]". A digest wins over a tag.
image_ref parse_image_ref(std::string_view ref);

/// `POST /images/create?fromImage=..&tag=..[&platform=..]` target.
std::string pull_target(const image_ref& ref, std::string_view platform);

/// Value of the X-Registry-Auth header: base64url of
/// `{"username":..,"password":..}`.
std::string registry_auth(std::string_view username,
                          std::string_view password);

/// Scans a pull response (a stream of JSON lines) and returns the first
/// error message ("errorDetail.message" or "error"), if any.
std::optional<std::string> pull_stream_error(std::string_view body);

/// Follows the JSON lines of a pull and summarizes its progress for people
/// (`progressDetail` of the "Downloading" lines, per layer).
class pull_tracker {
public:
  /// Feeds the next bytes of the stream (any split, also mid-line).
  void feed(std::string_view chunk);

  /// "Pulling image X: 42% (12.3/29.1 MB)" while sizes are known,
  /// "Pulling image X: extracting (29.1 MB)" once every layer is down,
  /// "Pulling image X." before the first size arrives.
  std::string describe(std::string_view image) const;

  /// Bytes downloaded and expected so far over the layers with a size.
  uint64_t current() const;
  uint64_t total() const;

  /// The first error the stream reported, if any.
  const std::optional<std::string>& error() const {
    return error_;
  }

private:
  struct layer {
    uint64_t current = 0;
    uint64_t total = 0;
    bool downloaded = false;
  };

  void line(std::string_view x);

  std::string partial_;
  std::map<std::string, layer> layers_;
  bool extracting_ = false;
  std::optional<std::string> error_;
};

// -- daemon -------------------------------------------------------------------

/// Maps Docker's architecture names to the API's ("x86_64" -> "amd64",
/// "aarch64"/"arm64/v8" -> "arm64"); others are returned lower-cased.
std::string normalize_arch(std::string_view arch);

/// Parses `GET /info` (OSType, Architecture, ServerVersion, Runtimes,
/// DefaultRuntime).
expected<daemon_info> parse_info(std::string_view body);

// -- containers ---------------------------------------------------------------

/// `POST /containers/create?name=..[&platform=..]` target.
std::string create_target(const container_spec& spec);

/// JSON body of `POST /containers/create`; empty/zero fields are omitted.
std::string create_body(const container_spec& spec);

/// `GET /containers/json?all=1[&filters=..]` target. A label value of ""
/// filters on the key only.
std::string list_target(const std::map<std::string, std::string>& labels);

/// `/containers/{id}` followed by `suffix` ("/start", "/json", "?force=true").
std::string container_target(std::string_view id, std::string_view suffix);

/// `GET /images/json?filters={"reference":[repository],"label":[..]}`.
std::string image_list_target(std::string_view repository,
                              const std::map<std::string, std::string>& labels);

/// The `RepoTags` ("repo:tag") of every image of an image list.
expected<std::vector<std::string>> parse_image_tags(std::string_view body);

/// `POST /commit?container=..&repo=..&tag=..&pause=true` target.
std::string commit_target(std::string_view id, std::string_view repo,
                          std::string_view tag);

/// `/images/{ref}` followed by `suffix` ("/json", "").
std::string image_target(std::string_view ref, std::string_view suffix);

/// Extracts "Id" from the create response.
std::optional<std::string> parse_created_id(std::string_view body);

/// Parses `GET /containers/{id}/json`.
expected<container_info> parse_inspect(std::string_view body);

/// Parses `GET /containers/{id}/json` in detail (diagnostics).
expected<container_details> parse_details(std::string_view body);

/// `GET /containers/{id}/logs?stdout=1&stderr=1&timestamps=..&tail=..[&since=..]`.
std::string logs_target(std::string_view id, const log_query& q);

/// Joins the payloads of Docker's multiplexed log stream (8-byte frame
/// headers: stream type, 3 zero bytes, big-endian payload size) in order.
/// A body that does not start with a frame header (TTY containers) is
/// returned as is; a truncated last frame keeps what arrived.
std::string demux_logs(std::string_view body);

/// Parses `GET /containers/json`.
expected<std::vector<container_info>> parse_list(std::string_view body);

// -- volumes ------------------------------------------------------------------

/// `/volumes/{name}` target.
std::string volume_target(std::string_view name);

/// `GET /volumes[?filters=..]` target (labels as in `list_target`).
std::string volume_list_target(const std::map<std::string, std::string>& labels);

/// JSON body of `POST /volumes/create` (local driver).
std::string volume_create_body(std::string_view name,
                               const std::map<std::string, std::string>& labels);

/// Parses one volume (inspect and create answers).
expected<volume_info> parse_volume(std::string_view body);

/// Parses `GET /volumes` (`{"Volumes": [...]}`; null means none).
expected<std::vector<volume_info>> parse_volume_list(std::string_view body);

// -- errors -------------------------------------------------------------------

/// Maps an HTTP status of the daemon to a failure kind.
failure_kind kind_of_status(unsigned status);

/// Docker's JSON "message" field, else "HTTP <status>: <body>".
std::string error_message(unsigned status, std::string_view body);

/// Builds the failure for a non-success answer, prefixed with `what`.
failure http_failure(std::string_view what, unsigned status,
                     std::string_view body);

// -- encoding -----------------------------------------------------------------

/// Percent-encodes everything except RFC 3986 unreserved characters.
std::string url_encode(std::string_view x);

/// RFC 3339 with up to 9 fraction digits and any offset → microseconds
/// since the epoch. Docker's zero time "0001-01-01T00:00:00Z" and garbage
/// map to 0.
int64_t parse_rfc3339_us(std::string_view x);

/// Exit code from a list "Status" like "Exited (137) 5 minutes ago", else 0.
int parse_exit_code(std::string_view status);

} // namespace osb::runtimes::docker
