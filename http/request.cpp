#include "http/server.hpp"

namespace osb::http {

const std::string& request::header(const std::string& lower_name) const {
  static const std::string empty;
  for (const auto& [name, value] : headers)
    if (name == lower_name)
      return value;
  return empty;
}

} // namespace osb::http
