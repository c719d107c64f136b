#include "actors/error.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace osb {

namespace {

std::string context_text(const caf::error& err) {
  auto& ctx = err.context();
  if (ctx.size() > 0 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return {};
}

} // namespace

caf::atom_value osb_category() {
  return caf::atom("osb");
}

caf::atom_value runtime_category() {
  return caf::atom("runtime");
}

caf::error make_error(ec code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), osb_category(),
                    caf::make_message(std::move(message))};
}

caf::error make_error(const failure& f) {
  return caf::error{static_cast<uint8_t>(static_cast<uint8_t>(f.kind) + 1),
                    runtime_category(), caf::make_message(f.message)};
}

failure to_failure(const caf::error& err) {
  if (err.category() == runtime_category() && err.code() > 0)
    return failure{static_cast<failure_kind>(err.code() - 1),
                   context_text(err)};
  if (err == caf::sec::request_timeout)
    return failure{failure_kind::timeout, "the container runtime timed out"};
  return failure{failure_kind::failed, to_string(err)};
}

api_error to_api_error(const caf::error& err, const std::string& id) {
  if (err.category() == osb_category())
    return make_api_error(static_cast<ec>(err.code()), context_text(err));
  if (err.category() == runtime_category()) {
    auto f = to_failure(err);
    if (f.kind == failure_kind::unavailable)
      return make_api_error(ec::runtime_unavailable, f.message);
    return make_api_error(ec::internal, f.message);
  }
  if (err == caf::sec::request_timeout)
    return make_api_error(ec::request_timeout,
                          "The request timed out inside the server.");
  if (err == caf::sec::request_receiver_down && !id.empty())
    return make_api_error(ec::sandbox_not_found,
                          "Sandbox " + id + " not found.");
  return make_api_error(ec::internal, "Internal error: " + to_string(err));
}

std::string render_error(uint8_t code, caf::atom_value category,
                         const caf::message& ctx) {
  std::string result = to_string(category);
  result += '(';
  result += std::to_string(code);
  result += ')';
  if (ctx.size() > 0 && ctx.match_element<std::string>(0)) {
    result += ": ";
    result += ctx.get_as<std::string>(0);
  }
  return result;
}

} // namespace osb
