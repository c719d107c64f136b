#pragma once

// Code contexts (`/code`): one Jupyter kernel per context, started on the
// context's first run, state kept between runs, results streamed as the
// kernel produces them.

#include "execd/kernel.hpp"
#include "execd/stream.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd {

/// A context as the API shows it.
struct code_context_info {
  std::string id;
  std::string language;
  /// As requested ("" = execd's working directory).
  std::string cwd;
  /// The context `POST /code` uses for a language without an id.
  bool is_default = false;
  /// Whether its kernel runs.
  bool kernel_running = false;
};

/// An API error: status, code and message of the JSON envelope.
struct code_error {
  int status = 0;
  std::string code;
  std::string message;

  bool ok() const {
    return status == 0;
  }
};

struct code_options {
  /// Connection files and kernel logs.
  std::string dir;
  /// Contexts beyond this are refused (they cost nothing until they run).
  size_t max_contexts = 10000;
  /// Kernels running at once (each is a process of tens of MB).
  size_t max_kernels = 32;
  /// Code larger than this is refused.
  size_t max_code = 8 * 1024 * 1024;
  std::chrono::milliseconds start_timeout{60000};
  /// Where kernelspecs are looked up; empty = kernel_spec_dirs() of the
  /// command environment, on every lookup (kernels installed later count).
  std::vector<std::string> spec_dirs;
  /// A `ping` event after this much silence.
  std::chrono::milliseconds ping_every{3000};
  /// How long to wait for a kernel's final `idle` once it replied.
  std::chrono::milliseconds idle_grace{2000};
};

/// What one run observed (for tests and logs).
struct run_summary {
  bool completed = false;
  bool errored = false;
  bool kernel_died = false;
  bool client_gone = false;
  /// A kernel was started for this run.
  std::optional<kernel_start_times> started;
};

/// The contexts of this execd.
class code_manager {
public:
  explicit code_manager(code_options opts);
  ~code_manager();

  code_manager(const code_manager&) = delete;
  code_manager& operator=(const code_manager&) = delete;

  /// Creates a context for `language` in `cwd` (resolved by the caller; ""
  /// = execd's). Its kernel starts on the first run.
  code_error create(const std::string& language, const std::string& cwd,
                    code_context_info& out);

  /// All contexts, or those of `language`.
  std::vector<code_context_info> list(const std::string& language) const;

  /// One context.
  std::optional<code_context_info> get(const std::string& id) const;

  /// Deletes a context and shuts its kernel down (in the background).
  bool remove(const std::string& id);

  /// Deletes every context of `language`; returns how many.
  size_t remove_language(const std::string& language);

  /// Runs `code` in context `id`, or (empty id) in the default context of
  /// `language`, streaming events into `sink`. On a returned error nothing
  /// was written.
  code_error run(const std::string& id, const std::string& language,
                 std::string_view code, event_sink& sink,
                 run_summary* summary = nullptr);

  /// Outcome of interrupt().
  enum class interrupt_result { done, not_running, unknown };

  /// Interrupts the execution running in context `id`.
  interrupt_result interrupt(const std::string& id);

  /// Whether `id` names a context.
  bool exists(const std::string& id) const;

  /// The languages that have a kernelspec, sorted.
  std::vector<std::string> languages() const;

  /// Kernels running now.
  size_t running_kernels() const;

private:
  struct context {
    std::string id;
    std::string language;
    std::string cwd;
    bool is_default = false;
    /// Held for the whole of a run: one execution at a time.
    std::mutex run_mtx;
    std::atomic<bool> running{false};
    /// Guards `k`.
    mutable std::mutex kernel_mtx;
    std::shared_ptr<kernel> k;
  };

  std::vector<std::string> spec_dirs() const;
  code_error check_language(const std::string& language,
                            kernel_spec* spec) const;
  std::shared_ptr<context> find(const std::string& id) const;
  code_error ensure_kernel(context& c, std::shared_ptr<kernel>& k,
                           bool& restarted, run_summary* summary);
  void execute(context& c, kernel& k, std::string_view code,
               event_sink& sink, bool restarted, run_summary* summary);
  void retire(std::shared_ptr<context> c);
  static code_context_info info_of(const context& c);

  code_options opts_;
  mutable std::mutex mtx_;
  std::map<std::string, std::shared_ptr<context>> contexts_;
  /// language -> id of its default context.
  std::map<std::string, std::string> defaults_;
  /// Kernel starts in flight (counted against max_kernels).
  size_t starting_ = 0;
};

/// Encodes a MIME bundle (`data` of execute_result / display_data) as the
/// `results` object of a `result` event: keys sorted (as Go's encoder
/// writes maps), `text/plain` renamed to `text`.
std::string encode_mime_bundle(const rapidjson::Value& data);

/// Picks the kernelspec for `language` among `specs`: one whose language
/// matches, preferring a name equal to the language, then the first name.
std::optional<kernel_spec> pick_kernel_spec(const std::vector<kernel_spec>& specs,
                                            std::string_view language);

} // namespace osb::execd
