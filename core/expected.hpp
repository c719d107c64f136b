#pragma once

#include <optional>
#include <string>
#include <utility>

namespace osb {

/// Why an operation outside our process (runtime, store) failed.
enum class failure_kind : uint8_t {
  not_found,   ///< the object does not exist (Docker 404)
  conflict,    ///< the object is in the wrong state (Docker 409)
  unavailable, ///< the daemon could not be reached
  timeout,     ///< no answer in time
  invalid,     ///< the daemon rejected the request (Docker 400)
  failed,      ///< anything else
};

/// A failure with a message a person can act on.
struct failure {
  failure_kind kind = failure_kind::failed;
  std::string message;
};

/// Placeholder value for operations without a result.
struct unit {};

/// Either a value or a failure; the tiny subset of std::expected we need.
template <class T>
class expected {
public:
  expected(T x) : value_(std::move(x)) {
    // nop
  }
  expected(failure f) : error_(std::move(f)) {
    // nop
  }
  bool has_value() const {
    return value_.has_value();
  }
  explicit operator bool() const {
    return has_value();
  }
  T& value() {
    return *value_;
  }
  const T& value() const {
    return *value_;
  }
  T& operator*() {
    return *value_;
  }
  T* operator->() {
    return &*value_;
  }
  const failure& error() const {
    return error_;
  }

private:
  std::optional<T> value_;
  failure error_;
};

} // namespace osb
