// The [ingress] section of the config, with its secure-access signing keys
// (OSEP-0011 signed URLs).

#include "core/base64.hpp"
#include "core/config.hpp"
#include "core/config_reader.hpp"
#include "base/strings.hpp"

#include <algorithm>
#include <cctype>
#include <map>

namespace osb::config_detail {

namespace {

bool is_key_id(const std::string& x) {
  return x.size() == 1
         && ((x[0] >= '0' && x[0] <= '9') || (x[0] >= 'a' && x[0] <= 'z'));
}

/// `[ingress.secure_access]` (§4.5, OSEP-0011), validated like the
/// original: one-character key ids [0-9a-z], unique, base64 keys (padded or
/// not) of at least one byte, an active key that exists.
void read_secure_access(reader& r, const toml::node& where,
                        const toml::table& t, const std::string& path,
                        node_config::ingress_section::secure_access_section&
                          out) {
  std::string active;
  const toml::node* active_node = nullptr;
  r.keys(t, path,
         {
           {"active_key",
            [&](const toml::node& a, const std::string& ap) {
              if (!r.get(a, ap, active))
                return;
              active_node = &a;
              if (!is_key_id(active))
                r.fail(a, ap + " must be exactly one character [0-9a-z], got '"
                            + active + "'");
            }},
           {"keys",
            [&](const toml::node& a, const std::string& ap) {
              auto arr = a.as_array();
              if (arr == nullptr || arr->empty()) {
                r.fail(a, ap + " must be a non-empty array of tables");
                return;
              }
              for (auto& e : *arr) {
                auto et = r.table(e, ap + "[]");
                if (et == nullptr)
                  return;
                std::string id;
                std::string key;
                const toml::node* id_node = nullptr;
                const toml::node* key_node = nullptr;
                r.keys(*et, ap,
                       {{"key_id",
                         [&](const toml::node& x, const std::string& xp) {
                           if (r.get(x, xp, id))
                             id_node = &x;
                         }},
                        {"key",
                         [&](const toml::node& x, const std::string& xp) {
                           if (r.get(x, xp, key))
                             key_node = &x;
                         }}});
                if (r.failed())
                  return;
                if (id_node == nullptr || key_node == nullptr) {
                  r.fail(e, ap + " entries need key_id and key");
                  return;
                }
                if (!is_key_id(id)) {
                  r.fail(*id_node, ap + ".key_id must be exactly one character "
                                        "[0-9a-z], got '" + id + "'");
                  return;
                }
                auto secret = base64_decode(trim(key));
                if (!secret) {
                  r.fail(*key_node, ap + ".key is not valid base64");
                  return;
                }
                if (secret->empty()) {
                  r.fail(*key_node, ap + ".key must decode to at least 1 byte");
                  return;
                }
                for (auto& k : out.keys)
                  if (k.id == id[0]) {
                    r.fail(*id_node, "duplicate secure_access key_id '" + id
                                       + "'; each key_id must be unique");
                    return;
                  }
                out.keys.push_back({id[0], std::move(*secret)});
              }
            }},
         });
  if (r.failed())
    return;
  if (active_node == nullptr || out.keys.empty()) {
    r.fail(where, path + " needs active_key and at least one of keys");
    return;
  }
  for (auto& k : out.keys)
    if (k.id == active[0]) {
      out.active_key = active[0];
      return;
    }
  r.fail(*active_node, "active_key '" + active
                         + "' not found in secure_access.keys");
}

/// Checks the gateway sub-keys of §4.5 structurally (none of them can be
/// used with the docker runtime, which this function rejects) and reads
/// secure_access, whose keys sign the server proxy's URLs here.
} // namespace

void read_ingress(reader& r, const toml::table& t, node_config& cfg) {
  const toml::node* mode_node = nullptr;
  const toml::node* gateway_node = nullptr;
  r.keys(
    t, "ingress",
    {
      {"mode",
       [&](const toml::node& n, const std::string& p) {
         if (r.get_enum(n, p, cfg.ingress.mode, {"direct", "gateway"}, false))
           mode_node = &n;
       }},
      {"gateway",
       [&](const toml::node& n, const std::string& p) {
         auto g = r.table(n, p);
         if (g == nullptr)
           return;
         gateway_node = &n;
         r.keys(*g, p,
                {
                  {"address",
                   [&](const toml::node& a, const std::string& ap) {
                     std::string x;
                     if (r.get(a, ap, x) && x.find("://") != std::string::npos)
                       r.fail(a, ap + " must not contain a scheme ('://')");
                   }},
                  {"route",
                   [&](const toml::node& rt, const std::string& rp) {
                     auto rtt = r.table(rt, rp);
                     if (rtt == nullptr)
                       return;
                     r.keys(*rtt, rp,
                            {{"mode", [&](const toml::node& m,
                                          const std::string& mp) {
                                std::string x;
                                r.get_enum(m, mp, x,
                                           {"wildcard", "header", "uri"},
                                           false);
                              }}});
                   }},
                });
       }},
      {"secure_access",
       [&](const toml::node& n, const std::string& p) {
         auto s = r.table(n, p);
         if (s == nullptr)
           return;
         read_secure_access(r, n, *s, p, cfg.ingress.secure_access);
       }},
    });
  if (r.failed())
    return;
  if (cfg.ingress.mode == "direct" && gateway_node != nullptr)
    r.fail(*gateway_node,
           "ingress.gateway must be omitted when ingress.mode = 'direct'");
  else if (cfg.ingress.mode != "direct")
    r.fail(*mode_node, "ingress.mode must be 'direct' when runtime.type = "
                       "'docker' (got '"
                         + cfg.ingress.mode + "')");
}

} // namespace osb::config_detail
