#include "core/model.hpp"

#include <algorithm>
#include <cctype>

namespace osb {

namespace {

constexpr const char* state_names[] = {
  "Pending",    "Running", "Pausing", "Paused",  "Resuming",
  "Stopping", "Terminated", "Failed", "Unknown",
};

bool iequals(const std::string& a, const char* b) {
  size_t i = 0;
  for (; i < a.size() && b[i] != '\0'; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return i == a.size() && b[i] == '\0';
}

} // namespace

const char* to_string(sandbox_state x) {
  return state_names[static_cast<size_t>(x)];
}

const char* to_string(create_phase x) {
  static constexpr const char* names[] = {"accepted", "stored",  "prepared",
                                          "created",  "started", "running"};
  static_assert(std::size(names) == num_create_phases);
  return names[static_cast<size_t>(x)];
}

bool from_string(const std::string& str, sandbox_state& x) {
  for (size_t i = 0; i < std::size(state_names); ++i) {
    if (iequals(str, state_names[i])) {
      x = static_cast<sandbox_state>(i);
      return true;
    }
  }
  return false;
}

bool matches(const snapshot_view& x, const snapshot_query& q) {
  if (!q.sandbox_id.empty() && x.sandbox_id != q.sandbox_id)
    return false;
  if (q.by_name && x.name != q.name)
    return false;
  return q.states.empty()
         || std::find(q.states.begin(), q.states.end(), x.state)
              != q.states.end();
}

bool matches(const sandbox_view& x, const list_query& q) {
  if (q.match_nothing)
    return false;
  if (!q.states.empty()
      && std::find(q.states.begin(), q.states.end(), x.state) == q.states.end())
    return false;
  for (auto& [k, v] : q.metadata) {
    auto i = x.metadata.find(k);
    if (i == x.metadata.end() || i->second != v)
      return false;
  }
  return true;
}

list_page paginate(std::vector<const sandbox_view*> xs, const list_query& q) {
  list_page result;
  result.page = q.page;
  result.page_size = q.page_size;
  result.total_items = paginate_into(std::move(xs), q.page, q.page_size,
                                     result.items);
  return result;
}

list_page paginate(const std::vector<sandbox_view>& xs, const list_query& q) {
  std::vector<const sandbox_view*> ptrs;
  ptrs.reserve(xs.size());
  for (auto& x : xs)
    ptrs.push_back(&x);
  return paginate(std::move(ptrs), q);
}

} // namespace osb
