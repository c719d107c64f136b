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

bool from_string(const std::string& str, sandbox_state& x) {
  for (size_t i = 0; i < std::size(state_names); ++i) {
    if (iequals(str, state_names[i])) {
      x = static_cast<sandbox_state>(i);
      return true;
    }
  }
  return false;
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
  result.total_items = static_cast<int64_t>(xs.size());
  auto first = static_cast<int64_t>(q.page - 1) * q.page_size;
  if (first >= result.total_items)
    return result;
  auto last = std::min<int64_t>(first + q.page_size, result.total_items);
  // Only the requested page needs to be in order.
  std::partial_sort(xs.begin(), xs.begin() + last, xs.end(),
                    [](const sandbox_view* a, const sandbox_view* b) {
                      if (a->created_us != b->created_us)
                        return a->created_us > b->created_us;
                      return a->id > b->id;
                    });
  for (auto i = first; i < last; ++i)
    result.items.push_back(*xs[i]);
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
