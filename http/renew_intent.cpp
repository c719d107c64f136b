#include "http/renew_intent.hpp"

#include <algorithm>

namespace osb::http {

std::optional<int64_t> renew_coordinator::on_access(const sandbox_view& v,
                                                    int64_t now_us,
                                                    clock::time_point now) {
  // Cheap checks first: most sandboxes carry no extend value.
  if (v.renew_extend_s <= 0 || v.expires_us == 0
      || v.state != sandbox_state::running)
    return std::nullopt;
  auto target = std::max(now_us + v.renew_extend_s * 1000000, v.expires_us);
  if (target == v.expires_us)
    return std::nullopt; // the expiry already lies beyond now + extend
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(v.id);
  if (i == entries_.end()) {
    if (!make_room())
      return std::nullopt;
    lru_.push_front(v.id);
    i = entries_.emplace(v.id, entry{lru_.begin(), false, std::nullopt}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, i->second.pos);
  }
  auto& e = i->second;
  if (e.in_flight || (e.renewed_at && now - *e.renewed_at < min_interval_))
    return std::nullopt;
  e.in_flight = true;
  return target;
}

void renew_coordinator::done(const std::string& id, bool ok,
                             clock::time_point now) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(id);
  if (i == entries_.end())
    return;
  i->second.in_flight = false;
  if (ok)
    i->second.renewed_at = now;
  else // retry after 5 s, not on every proxied request
    i->second.renewed_at = now - min_interval_ + std::chrono::seconds(5);
}

size_t renew_coordinator::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return entries_.size();
}

bool renew_coordinator::make_room() {
  if (entries_.size() < max_entries_)
    return true;
  // Oldest access first; an entry with a renewal under way must stay, so
  // that its outcome still finds it.
  for (auto pos = lru_.end(); pos != lru_.begin();) {
    --pos;
    auto i = entries_.find(*pos);
    if (i->second.in_flight)
      continue;
    entries_.erase(i);
    lru_.erase(pos);
    return true;
  }
  return false;
}

} // namespace osb::http
