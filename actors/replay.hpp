#pragma once

// At-most-once execution of mutations by request id: a client that retries
// with the same X-Request-ID (after a timeout, a 504, a lost connection)
// joins the attempt in flight or gets its answer, instead of applying the
// mutation twice. Only successes are remembered (a failed mutation did not
// happen, so a retry may apply it), for a bounded time and number.

#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace osb {

template <class T>
class replay_table {
public:
  using promise = caf::typed_response_promise<T>;

  using clock = std::chrono::steady_clock;

  explicit replay_table(size_t capacity = 4096,
                        clock::duration ttl = std::chrono::minutes(10))
    : capacity_(capacity), ttl_(ttl) {
    // nop
  }

  /// The remembered answer of `key` if younger than the TTL, or nullptr.
  const T* find(const std::string& key, clock::time_point now
                                        = clock::now()) const {
    auto i = done_.find(key);
    if (i == done_.end() || now - i->second.at > ttl_)
      return nullptr;
    return &i->second.value;
  }

  /// Adds a waiter for `key`; returns true when it is the first (the caller
  /// then runs the mutation).
  bool wait(const std::string& key, promise rp) {
    auto& xs = waiting_[key];
    xs.push_back(std::move(rp));
    return xs.size() == 1;
  }

  /// Delivers a success to every waiter of `key` and remembers it.
  void succeed(const std::string& key, const T& x) {
    if (done_.emplace(key, entry{x, clock::now()}).second) {
      order_.push_back(key);
      if (order_.size() > capacity_) {
        done_.erase(order_.front());
        order_.pop_front();
      }
    }
    for (auto& rp : take(key))
      rp.deliver(x);
  }

  /// Delivers an error to every waiter of `key`; nothing is remembered.
  void fail(const std::string& key, const caf::error& err) {
    for (auto& rp : take(key))
      rp.deliver(err);
  }

private:
  std::vector<promise> take(const std::string& key) {
    std::vector<promise> result;
    auto i = waiting_.find(key);
    if (i != waiting_.end()) {
      result = std::move(i->second);
      waiting_.erase(i);
    }
    return result;
  }

  struct entry {
    T value;
    clock::time_point at;
  };

  size_t capacity_;
  clock::duration ttl_;
  std::unordered_map<std::string, entry> done_;
  std::deque<std::string> order_;
  std::unordered_map<std::string, std::vector<promise>> waiting_;
};

} // namespace osb
