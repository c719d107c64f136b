#include "runtimes/docker/operation_name.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace osb::runtimes::docker {

namespace {

/// Path segments that name an action of the Engine API rather than an
/// object (a container id, an image or volume name).
bool is_action(std::string_view x) {
  constexpr std::string_view actions[]
    = {"create", "json",    "start",   "stop",   "restart", "kill",
       "pause",  "unpause", "wait",    "archive", "logs",   "prune",
       "exec",   "resize",  "attach",  "top",    "stats",   "changes",
       "export", "update",  "rename",  "push",   "tag",     "history",
       "get",    "load",    "search",  "connect", "disconnect"};
  return std::find(std::begin(actions), std::end(actions), x)
         != std::end(actions);
}

} // namespace

std::string docker_operation(boost::beast::http::verb method,
                             std::string_view target) {
  auto q = target.find('?');
  if (q != std::string_view::npos)
    target = target.substr(0, q);
  std::vector<std::string_view> segs;
  size_t pos = 0;
  while (pos < target.size()) {
    auto next = target.find('/', pos);
    if (next == std::string_view::npos)
      next = target.size();
    if (next > pos)
      segs.push_back(target.substr(pos, next - pos));
    pos = next + 1;
  }
  // The version prefix ("v1.41").
  if (!segs.empty() && segs[0].size() > 1 && segs[0][0] == 'v'
      && std::isdigit(static_cast<unsigned char>(segs[0][1])))
    segs.erase(segs.begin());
  if (segs.empty())
    return "other";
  std::string out{segs[0]};
  if (segs.size() == 1)
    return out;
  auto last = segs.back();
  std::string action;
  if (is_action(last))
    action = std::string{last};
  else
    action = std::string{boost::beast::http::to_string(method)};
  std::transform(action.begin(), action.end(), action.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out + "_" + action;
}

} // namespace osb::runtimes::docker
