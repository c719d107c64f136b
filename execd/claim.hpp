#pragma once

// Pool members (docs/pools.md, execd/README.md "Claims"): with
// `--await-claim --bootstrap`, PID 1 starts the daemon and waits, instead of
// exec'ing the user command at once, until the server posts the claim to
// the daemon's `POST /bootstrap/claim` (with the sandbox's access token like
// every call). The daemon hands the claim to PID 1 through a pipe; PID 1
// sets the claim's env and execs the claim's entrypoint (the command line's
// when the claim has none). The daemon sets the same env for the commands
// it runs from then on.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/http_io.hpp"

namespace osb::execd {

/// The body of `POST /bootstrap/claim`.
struct claim_message {
  std::vector<std::string> entrypoint;
  std::map<std::string, std::string> env;
};

/// Parses `{"entrypoint":[str...]?, "env":{str:str}?}`; nullopt and `*err`
/// when it is not that.
std::optional<claim_message> parse_claim(std::string_view body,
                                         std::string* err);

/// The pipe between the daemon and PID 1 of a member, and the claim once
/// delivered. One per process (`the_claim_gate`).
class claim_gate {
public:
  /// Creates the pipe (before the fork); false on failure.
  bool open();

  /// In the daemon after the fork: keeps the write end only.
  void daemon_side();

  /// In PID 1 after the fork: keeps the read end and blocks until a claim
  /// arrives; nullopt when the daemon went away first.
  std::optional<claim_message> wait();

  /// Delivers a claim (daemon): 200 for the first one and for a repeat of
  /// the same body (a server that restarted resends it), 409 for another
  /// one, 404 when this process does not wait for a claim, 400 for a bad
  /// body. `*err` says why when not 200.
  int deliver(std::string_view body, std::string* err);

  /// Closes both ends (tests).
  ~claim_gate();

private:
  int read_fd_ = -1;
  int write_fd_ = -1;
  bool awaiting_ = false;
  std::string delivered_;
};

claim_gate& the_claim_gate();

/// `POST /bootstrap/claim` (execd's router).
void handle_claim(base::body_reader& body, base::response_writer& w);

} // namespace osb::execd
