#pragma once

// Internal to the config loader (core/config*.cpp): the TOML reader that
// records the first problem with its position, and small helpers.

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>

#include <toml++/toml.h>

#include "core/config.hpp"

namespace osb::config_detail {

inline std::string lower(std::string x) {
  for (auto& c : x)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return x;
}

inline std::string upper(std::string x) {
  for (auto& c : x)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return x;
}

inline std::string home_dir() {
  if (auto home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return home;
  if (auto pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr)
    return pw->pw_dir;
  return "/";
}

/// Expands a leading `~` or `~/` (not `~user`) to the home directory.
inline std::string expand_home(const std::string& path) {
  if (path == "~")
    return home_dir();
  if (path.size() >= 2 && path[0] == '~' && path[1] == '/')
    return home_dir() + path.substr(1);
  return path;
}

inline bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// Walks a parsed document and records the first problem with its position.
class reader {
public:
  explicit reader(std::string source) : source_(std::move(source)) {
    // nop
  }

  bool failed() const {
    return error_.has_value();
  }

  const std::string& error() const {
    return *error_;
  }

  std::string where(const toml::source_region& r) const {
    std::ostringstream os;
    os << source_ << ':' << r.begin.line << ':' << r.begin.column;
    return os.str();
  }

  void fail(const toml::source_region& r, const std::string& msg) {
    if (!error_)
      error_ = where(r) + ": " + msg;
  }

  void fail(const toml::node& n, const std::string& msg) {
    fail(n.source(), msg);
  }

  // -- typed getters (return false and record an error on mismatch) ----------

  bool get(const toml::node& n, const std::string& path, std::string& out) {
    auto s = n.as_string();
    if (s == nullptr) {
      fail(n, path + " must be a string");
      return false;
    }
    out = s->get();
    return true;
  }

  bool get(const toml::node& n, const std::string& path, bool& out) {
    auto b = n.as_boolean();
    if (b == nullptr) {
      fail(n, path + " must be a boolean (true or false)");
      return false;
    }
    out = b->get();
    return true;
  }

  bool get(const toml::node& n, const std::string& path, int64_t& out,
           int64_t min, int64_t max) {
    auto i = n.as_integer();
    if (i == nullptr) {
      fail(n, path + " must be an integer");
      return false;
    }
    auto v = i->get();
    if (v < min || v > max) {
      std::ostringstream os;
      if (max == INT64_MAX)
        os << path << " must be >= " << min << " (got " << v << ")";
      else
        os << path << " must be between " << min << " and " << max
           << " (got " << v << ")";
      fail(n, os.str());
      return false;
    }
    out = v;
    return true;
  }

  bool get(const toml::node& n, const std::string& path,
           std::vector<std::string>& out) {
    auto a = n.as_array();
    if (a == nullptr) {
      fail(n, path + " must be an array of strings");
      return false;
    }
    std::vector<std::string> xs;
    for (auto& e : *a) {
      auto s = e.as_string();
      if (s == nullptr) {
        fail(e, path + " must contain only strings");
        return false;
      }
      xs.emplace_back(s->get());
    }
    out = std::move(xs);
    return true;
  }

  /// A string out of a fixed set; `fold` compares case-insensitively.
  bool get_enum(const toml::node& n, const std::string& path, std::string& out,
                std::initializer_list<const char*> allowed, bool fold) {
    std::string x;
    if (!get(n, path, x))
      return false;
    auto cmp = fold ? lower(x) : x;
    for (auto a : allowed) {
      if (cmp == (fold ? lower(a) : std::string{a})) {
        out = x;
        return true;
      }
    }
    std::string list;
    for (auto a : allowed) {
      if (!list.empty())
        list += ", ";
      list += '\'';
      list += a;
      list += '\'';
    }
    fail(n, path + " must be one of " + list + " (got '" + x + "')");
    return false;
  }

  using handler = std::function<void(const toml::node&, const std::string&)>;

  /// Dispatches every key of `tbl` to its handler; unknown keys are errors.
  void keys(const toml::table& tbl, const std::string& prefix,
            const std::map<std::string, handler>& handlers) {
    for (auto&& [k, v] : tbl) {
      if (failed())
        return;
      auto name = std::string{k.str()};
      auto path = prefix.empty() ? name : prefix + "." + name;
      auto i = handlers.find(name);
      if (i == handlers.end()) {
        fail(k.source(), "unknown key '" + path + "'");
        return;
      }
      i->second(v, path);
    }
  }

  /// Requires `n` to be a table and returns it (nullptr after an error).
  const toml::table* table(const toml::node& n, const std::string& path) {
    auto t = n.as_table();
    if (t == nullptr)
      fail(n, path + " must be a table");
    return t;
  }

private:
  std::string source_;
  std::optional<std::string> error_;
};

/// Reads [ingress] (core/config_ingress.cpp).
void read_ingress(reader& r, const toml::table& t, node_config& cfg);

/// Reads [kubernetes] (core/config_kubernetes.cpp).
void read_kubernetes(reader& r, const toml::table& t, node_config& cfg);
/// `[agent_sandbox]` (core/config_kubernetes.cpp); the cross-check with
/// kubernetes.workload_provider is the caller's (sections come in any
/// order).
void read_agent_sandbox(reader& r, const toml::table& t, node_config& cfg);

} // namespace osb::config_detail
