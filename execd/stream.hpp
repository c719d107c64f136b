#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd {

/// The `error` member of a stream event.
struct stream_error {
  std::string ename;
  std::string evalue;
  std::vector<std::string> traceback;
};

/// One event of the `/command`, `/session/{id}/run` and `/code` streams.
struct stream_event {
  std::string type;
  /// Omitted when empty.
  std::string text;
  std::optional<int64_t> execution_count;
  /// Omitted when zero (Go `omitempty`).
  int64_t execution_time = 0;
  /// Unix milliseconds; always written.
  int64_t timestamp = 0;
  std::optional<stream_error> error;
};

/// Appends the wire form of `x`: compact JSON followed by "\n\n". Keys are
/// written in the order of Go's struct: type, text, execution_count,
/// execution_time, timestamp, error.
void encode_event(std::string& out, const stream_event& x);

/// Convenience encoders; `ts` is the event's Unix-millisecond timestamp.
std::string encode_init(std::string_view id, int64_t ts);
std::string encode_ping(int64_t ts);
std::string encode_output(std::string_view type, std::string_view text,
                          int64_t ts);
std::string encode_complete(int64_t execution_time_ms, int64_t ts);
std::string encode_error(std::string_view ename, std::string_view evalue,
                         const std::vector<std::string>& traceback, int64_t ts);

/// `execution_count` (a Jupyter cell counter).
std::string encode_count(int64_t count, int64_t ts);

/// `status` with `text` (Jupyter's error path sends "error").
std::string encode_status(std::string_view text, int64_t ts);

/// `result` with `results` = `results_json`, an already encoded JSON object
/// (a MIME bundle whose `text/plain` is renamed to `text`). Keys in Go's
/// order: type, timestamp, results.
std::string encode_result(std::string_view results_json, int64_t ts);

/// Receives encoded stream bytes. Implementations write them to a client.
class event_sink {
public:
  virtual ~event_sink() = default;

  /// Writes (and flushes) `bytes`; returns false once the client is gone.
  virtual bool write(std::string_view bytes) = 0;
};

/// Splits process output into lines the way the SDKs expect: `\n`, `\r` and
/// `\r\n` terminate a line (the terminator is dropped), a blank line is
/// reported as "\n", and a line longer than `max_line` is cut into pieces so
/// memory stays bounded.
class line_splitter {
public:
  explicit line_splitter(size_t max_line = 1024 * 1024) : max_line_(max_line) {
    // nop
  }

  /// Feeds output; calls `emit(std::string_view text)` for every line.
  template <class F>
  void feed(std::string_view data, F&& emit) {
    size_t i = 0;
    if (pending_cr_ && !data.empty()) {
      pending_cr_ = false;
      if (data[0] == '\n')
        i = 1;
    }
    while (i < data.size()) {
      size_t j = i;
      while (j < data.size() && data[j] != '\n' && data[j] != '\r')
        ++j;
      if (j == data.size()) {
        append_partial(data.substr(i), emit);
        return;
      }
      // A complete line: [i, j).
      if (partial_.empty()) {
        auto line = data.substr(i, j - i);
        emit_line(line, emit);
      } else {
        append_partial(data.substr(i, j - i), emit);
        emit_line(partial_, emit);
        partial_.clear();
      }
      if (data[j] == '\r') {
        if (j + 1 < data.size()) {
          if (data[j + 1] == '\n')
            ++j;
        } else {
          pending_cr_ = true;
        }
      }
      i = j + 1;
    }
  }

  /// Flushes a trailing partial line.
  template <class F>
  void finish(F&& emit) {
    if (!partial_.empty()) {
      emit(std::string_view{partial_});
      partial_.clear();
    }
    pending_cr_ = false;
  }

private:
  template <class F>
  void emit_line(std::string_view line, F& emit) {
    if (line.empty())
      emit(std::string_view{"\n"});
    else
      emit(line);
  }

  template <class F>
  void append_partial(std::string_view x, F& emit) {
    while (max_line_ > 0 && partial_.size() + x.size() > max_line_) {
      auto take = max_line_ - partial_.size();
      partial_.append(x.data(), take);
      emit(std::string_view{partial_});
      partial_.clear();
      x.remove_prefix(take);
    }
    partial_.append(x.data(), x.size());
  }

  size_t max_line_;
  std::string partial_;
  bool pending_cr_ = false;
};

} // namespace osb::execd
