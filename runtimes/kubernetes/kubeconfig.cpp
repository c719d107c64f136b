#include "core/base64.hpp"
#include "runtimes/kubernetes/kube_internal.hpp"

#include <yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

namespace osb::runtimes::kubernetes {

namespace {

namespace fs = std::filesystem;

failure invalid(const std::string& path, const std::string& what) {
  return failure{failure_kind::invalid, "kubeconfig " + path + ": " + what};
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad())
    return std::nullopt;
  return out.str();
}

/// A loaded YAML document; nodes are looked up by libyaml's node pointers.
class yaml_doc {
public:
  yaml_doc() = default;
  yaml_doc(const yaml_doc&) = delete;
  yaml_doc& operator=(const yaml_doc&) = delete;

  ~yaml_doc() {
    if (loaded_)
      yaml_document_delete(&doc_);
  }

  /// Parses `text`; an error message on failure.
  std::string load(std::string_view text) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
      return "cannot initialize the YAML parser";
    yaml_parser_set_input_string(
      &parser, reinterpret_cast<const unsigned char*>(text.data()),
      text.size());
    std::string err;
    if (!yaml_parser_load(&parser, &doc_)) {
      std::ostringstream os;
      os << "not valid YAML: "
         << (parser.problem ? parser.problem : "parse error") << " at line "
         << parser.problem_mark.line + 1 << " column "
         << parser.problem_mark.column + 1;
      err = os.str();
    } else {
      loaded_ = true;
    }
    yaml_parser_delete(&parser);
    return err;
  }

  yaml_node_t* root() {
    return loaded_ ? yaml_document_get_root_node(&doc_) : nullptr;
  }

  yaml_node_t* node(int index) {
    return yaml_document_get_node(&doc_, index);
  }

  /// The value under `key` of a mapping, or null.
  yaml_node_t* get(yaml_node_t* map, std::string_view key) {
    if (map == nullptr || map->type != YAML_MAPPING_NODE)
      return nullptr;
    for (auto* p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; ++p) {
      auto* k = node(p->key);
      if (k && k->type == YAML_SCALAR_NODE && scalar(k) == key)
        return node(p->value);
    }
    return nullptr;
  }

  static std::string scalar(yaml_node_t* n) {
    if (n == nullptr || n->type != YAML_SCALAR_NODE)
      return {};
    return std::string{reinterpret_cast<const char*>(n->data.scalar.value),
                       n->data.scalar.length};
  }

  /// The scalar under `key`, empty when absent or not a scalar.
  std::string str(yaml_node_t* map, std::string_view key) {
    return scalar(get(map, key));
  }

  /// The entry of a named list (`clusters`, `users`, `contexts`) whose
  /// `name` is `name`: its `inner` mapping ("cluster", ...), or null.
  yaml_node_t* named(yaml_node_t* root, std::string_view list,
                     const std::string& name, std::string_view inner) {
    auto* seq = get(root, list);
    if (seq == nullptr || seq->type != YAML_SEQUENCE_NODE)
      return nullptr;
    for (auto* i = seq->data.sequence.items.start;
         i < seq->data.sequence.items.top; ++i) {
      auto* entry = node(*i);
      if (str(entry, "name") == name) {
        auto* x = get(entry, inner);
        // "cluster: {}" or an entry without its mapping: an empty one.
        return x ? x : entry;
      }
    }
    return nullptr;
  }

private:
  yaml_document_t doc_{};
  bool loaded_ = false;
};

bool truthy(const std::string& x) {
  return x == "true" || x == "True" || x == "TRUE" || x == "yes";
}

} // namespace

expected<kube_endpoint> parse_kubeconfig(std::string_view text,
                                         const std::string& path,
                                         const std::string& context) {
  yaml_doc doc;
  if (auto err = doc.load(text); !err.empty())
    return invalid(path, err);
  auto* root = doc.root();
  if (root == nullptr || root->type != YAML_MAPPING_NODE)
    return invalid(path, "not a kubeconfig (expected a mapping with "
                         "clusters, users and contexts)");
  auto dir = fs::path{path}.parent_path();
  // File paths in a kubeconfig are relative to the kubeconfig's folder.
  auto resolve = [&](const std::string& p) {
    fs::path x{p};
    return x.is_absolute() ? x.string() : (dir / x).string();
  };
  // Inline `<key>-data` (base64) wins over the file `<key>`, as in client-go.
  auto material = [&](yaml_node_t* map, const std::string& key,
                      const std::string& what) -> expected<std::string> {
    if (auto data = doc.str(map, key + "-data"); !data.empty()) {
      std::string compact;
      for (char c : data)
        if (c != '\n' && c != '\r' && c != ' ')
          compact += c;
      auto decoded = base64_decode(compact);
      if (!decoded)
        return invalid(path, what + ": " + key + "-data is not valid base64");
      return std::move(*decoded);
    }
    if (auto file = doc.str(map, key); !file.empty()) {
      auto full = resolve(file);
      auto content = read_file(full);
      if (!content)
        return invalid(path, what + ": cannot read " + key + " " + full);
      return std::move(*content);
    }
    return std::string{};
  };

  auto name = context.empty() ? doc.str(root, "current-context") : context;
  if (name.empty())
    return invalid(path, "no current-context and no context given");
  auto* ctx = doc.named(root, "contexts", name, "context");
  if (ctx == nullptr)
    return invalid(path, "context '" + name + "' not found");
  auto cluster_name = doc.str(ctx, "cluster");
  auto user_name = doc.str(ctx, "user");
  auto* cluster = doc.named(root, "clusters", cluster_name, "cluster");
  if (cluster == nullptr)
    return invalid(path, "cluster '" + cluster_name + "' of context '" + name
                           + "' not found");

  kube_endpoint ep;
  ep.server = doc.str(cluster, "server");
  if (ep.server.empty())
    return invalid(path, "cluster '" + cluster_name + "' has no server");
  if (auto url = parse_server_url(ep.server); !url)
    return invalid(path, "cluster '" + cluster_name
                           + "': " + url.error().message);
  while (!ep.server.empty() && ep.server.back() == '/')
    ep.server.pop_back();
  ep.insecure_skip_tls_verify
    = truthy(doc.str(cluster, "insecure-skip-tls-verify"));
  auto ca = material(cluster, "certificate-authority",
                     "cluster '" + cluster_name + "'");
  if (!ca)
    return ca.error();
  ep.ca_pem = std::move(*ca);
  ep.default_namespace = doc.str(ctx, "namespace");

  if (!user_name.empty()) {
    auto* user = doc.named(root, "users", user_name, "user");
    if (user == nullptr)
      return invalid(path, "user '" + user_name + "' of context '" + name
                             + "' not found");
    auto what = "user '" + user_name + "'";
    if (doc.get(user, "exec"))
      return invalid(path, what + ": exec credential plugins are not "
                                  "supported (use a client certificate or "
                                  "a token)");
    if (doc.get(user, "auth-provider"))
      return invalid(path, what + ": auth-provider plugins are not "
                                  "supported (use a client certificate or "
                                  "a token)");
    if (!doc.str(user, "username").empty()
        || !doc.str(user, "password").empty())
      return invalid(path, what + ": basic authentication (username/"
                                  "password) is not supported");
    auto cert = material(user, "client-certificate", what);
    if (!cert)
      return cert.error();
    auto key = material(user, "client-key", what);
    if (!key)
      return key.error();
    if (cert->empty() != key->empty())
      return invalid(path, what + ": a client certificate needs its key "
                                  "(client-certificate and client-key)");
    ep.client_cert_pem = std::move(*cert);
    ep.client_key_pem = std::move(*key);
    ep.token = doc.str(user, "token");
    if (auto file = doc.str(user, "tokenFile"); !file.empty()) {
      ep.token_file = resolve(file);
      auto content = read_file(ep.token_file);
      if (!content)
        return invalid(path, what + ": cannot read tokenFile "
                               + ep.token_file);
      // An inline token wins; the file is what client-go re-reads.
      if (ep.token.empty())
        ep.token = std::string{trim_token(*content)};
      else
        ep.token_file.clear();
    }
  }
  return ep;
}

std::string_view trim_token(std::string_view x) {
  while (!x.empty()
         && (x.back() == '\n' || x.back() == '\r' || x.back() == ' '))
    x.remove_suffix(1);
  while (!x.empty() && (x.front() == ' ' || x.front() == '\n'))
    x.remove_prefix(1);
  return x;
}

expected<kube_endpoint> load_kubeconfig(const std::string& path,
                                        const std::string& context) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    return invalid(path, "file not found");
  auto text = read_file(path);
  if (!text)
    return invalid(path, "cannot read the file");
  return parse_kubeconfig(*text, path, context);
}

expected<kube_endpoint> load_in_cluster(const std::string& dir) {
  auto fail = [](const std::string& what) {
    return failure{failure_kind::invalid,
                   "in-cluster configuration: " + what};
  };
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0')
    return fail("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not "
                "set (not running in a pod?); set kubeconfig_path");
  std::string h = host;
  if (h.find(':') != std::string::npos)
    h = "[" + h + "]"; // IPv6
  kube_endpoint ep;
  ep.server = "https://" + h + ":" + port;
  auto base = fs::path{dir};
  ep.token_file = (base / "token").string();
  auto token = read_file(ep.token_file);
  if (!token)
    return fail("cannot read " + ep.token_file);
  ep.token = std::string{trim_token(*token)};
  auto ca_path = (base / "ca.crt").string();
  auto ca = read_file(ca_path);
  if (!ca)
    return fail("cannot read " + ca_path);
  ep.ca_pem = std::move(*ca);
  if (auto ns = read_file((base / "namespace").string()))
    ep.default_namespace = std::string{trim_token(*ns)};
  return ep;
}

} // namespace osb::runtimes::kubernetes
