#include "runtimes/kubernetes/pod_spec.hpp"

#include <cstdio>

#include "base/json.hpp"
#include "base/strings.hpp"
#include "core/base64.hpp"
#include "core/json.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"

namespace osb::runtimes::kubernetes {

namespace {

using osb::json::writer;

/// The execd port, the conventional HTTP port and the egress API.
constexpr int execd_port = 44772;
constexpr int http_port = 8080;
constexpr int egress_api_port = 18080;

/// The volume the init container fills with execd.
constexpr const char* execd_volume = "opensandbox-bin";

/// Resource names of the API's `resourceLimits` on Kubernetes.
void write_limits(writer& o, const string_map& limits) {
  o.begin_object();
  for (auto& [k, v] : limits) {
    auto value = std::string{trim(v)};
    if (value.empty())
      continue;
    if (k == "cpu" || k == "memory" || k == "ephemeral-storage")
      o.key(k).str(value);
    else if (k == "gpu")
      o.key("nvidia.com/gpu").str(value);
  }
  o.end_object();
}

/// `{limits, requests}` when either is non-empty.
void write_resources(writer& o, const string_map& limits,
                     const string_map& requests) {
  o.key("resources").begin_object();
  if (!limits.empty())
    o.key("limits").map(limits);
  if (!requests.empty())
    o.key("requests").map(requests);
  o.end_object();
}

void write_env(writer& o, const std::vector<std::pair<std::string,
                                                      std::string>>& env) {
  o.key("env").begin_array();
  for (auto& [k, v] : env)
    o.begin_object().key("name").str(k).key("value").str(v).end_object();
  o.end_array();
}

void write_port(writer& o, const char* name, int port) {
  o.begin_object()
    .key("name")
    .str(name)
    .key("containerPort")
    .num(port)
    .key("protocol")
    .str("TCP")
    .end_object();
}

/// A readiness probe: `port` accepts TCP connections (checked every second).
void write_tcp_readiness(writer& o, int port) {
  o.key("readinessProbe")
    .begin_object()
    .key("tcpSocket")
    .begin_object()
    .key("port")
    .num(port)
    .end_object()
    .key("periodSeconds")
    .num(1)
    .end_object();
}

/// A volume's name in the pod: the API's names may not be DNS labels.
std::string pod_volume_name(size_t index) {
  return "volume-" + std::to_string(index);
}

void write_sandbox_container(writer& o, const node_config& cfg,
                             const sandbox_instance& x,
                             const std::vector<volume_mount>& volumes) {
  o.begin_object();
  o.key("name").str(sandbox_container);
  o.key("image").str(x.spec.image);
  o.key("imagePullPolicy").str(cfg.kubernetes.image_pull_policy);
  // execd's bootstrap starts the daemon, then execs the user's command,
  // which stays the container's main process (as on Docker).
  if (x.member_of.empty())
    o.key("command").strings({execd_path, "--bootstrap", "--"});
  else
    o.key("command").strings({execd_path, "--await-claim", "--bootstrap",
                              "--"});
  o.key("args").strings(x.spec.entrypoint);
  std::vector<std::pair<std::string, std::string>> env;
  for (auto& [k, v] : x.spec.env)
    if (k != "EXECD_ACCESS_TOKEN")
      env.emplace_back(k, v);
  // execd reads (and then drops from its environment) the token it
  // requires; it never reaches the user's processes.
  if (!x.access_token.empty())
    env.emplace_back("EXECD_ACCESS_TOKEN", x.access_token);
  write_env(o, env);
  if (x.egress_token.empty()) {
    // With a sidecar the pod's ports are declared there (one network
    // namespace, one declaration).
    o.key("ports").begin_array();
    write_port(o, "execd", execd_port);
    write_port(o, "http", http_port);
    o.end_array();
  }
  o.key("resources").begin_object();
  o.key("limits");
  write_limits(o, x.spec.resource_limits);
  o.end_object();
  // Ready once execd answers: the SDKs talk to it right after Running.
  write_tcp_readiness(o, execd_port);
  o.key("securityContext").begin_object();
  if (cfg.docker.no_new_privileges)
    o.key("allowPrivilegeEscalation").boolean(false);
  o.key("capabilities").begin_object().key("drop").begin_array();
  bool net_admin = false;
  for (auto& c : cfg.docker.drop_capabilities) {
    o.str(c);
    net_admin = net_admin || c == "NET_ADMIN";
  }
  // Only the sidecar may change the shared network namespace.
  if (!net_admin && !x.egress_token.empty())
    o.str("NET_ADMIN");
  o.end_array().end_object();
  o.end_object();
  o.key("volumeMounts").begin_array();
  o.begin_object()
    .key("name")
    .str(execd_volume)
    .key("mountPath")
    .str(execd_dir)
    .key("readOnly")
    .boolean(true)
    .end_object();
  for (size_t i = 0; i < volumes.size(); ++i) {
    auto& v = volumes[i];
    o.begin_object()
      .key("name")
      .str(pod_volume_name(i))
      .key("mountPath")
      .str(v.mount_path)
      .key("readOnly")
      .boolean(v.read_only);
    if (!v.sub_path.empty())
      o.key("subPath").str(v.sub_path);
    o.end_object();
  }
  o.end_array();
  o.end_object();
}

void write_egress_container(writer& o, const node_config& cfg,
                            const sandbox_instance& x) {
  o.begin_object();
  o.key("name").str(egress_container);
  o.key("image").str(cfg.egress.image);
  o.key("imagePullPolicy").str(cfg.kubernetes.image_pull_policy);
  std::vector<std::pair<std::string, std::string>> env = {
    {"OPENSANDBOX_EGRESS_RULES", x.spec.network_policy_json},
    {"OPENSANDBOX_EGRESS_MODE", cfg.egress.mode},
    {"OPENSANDBOX_EGRESS_TOKEN", x.egress_token},
  };
  if (!cfg.egress.upstream_dns.empty())
    env.emplace_back("OPENSANDBOX_EGRESS_UPSTREAM_DNS", cfg.egress.upstream_dns);
  write_env(o, env);
  o.key("ports").begin_array();
  write_port(o, "execd", execd_port);
  write_port(o, "http", http_port);
  write_port(o, "egress", egress_api_port);
  o.end_array();
  // The sidecar serves its policy API only once its firewall rules are in
  // place: the pod (all its containers) is Ready, and the sandbox Running,
  // only when the policy is enforced, not merely when execd listens.
  write_tcp_readiness(o, egress_api_port);
  o.key("securityContext")
    .begin_object()
    .key("allowPrivilegeEscalation")
    .boolean(false)
    .key("capabilities")
    .begin_object()
    .key("add")
    .strings({"NET_ADMIN"})
    .end_object()
    .end_object();
  o.end_object();
}

void write_init_container(writer& o, const node_config& cfg) {
  auto image = cfg.runtime.execd_image.empty() ? default_execd_image
                                               : cfg.runtime.execd_image;
  o.begin_object();
  o.key("name").str(execd_init_container);
  o.key("image").str(image);
  o.key("imagePullPolicy").str("IfNotPresent");
  o.key("command").strings(
    {"cp", execd_image_path, std::string{execd_dir} + "/execd"});
  write_resources(o, cfg.kubernetes.execd_init_limits,
                  cfg.kubernetes.execd_init_requests);
  o.key("volumeMounts")
    .begin_array()
    .begin_object()
    .key("name")
    .str(execd_volume)
    .key("mountPath")
    .str(execd_dir)
    .end_object()
    .end_array();
  o.end_object();
}

void write_volumes(writer& o, const std::vector<volume_mount>& volumes) {
  o.key("volumes").begin_array();
  o.begin_object()
    .key("name")
    .str(execd_volume)
    .key("emptyDir")
    .begin_object()
    .end_object()
    .end_object();
  for (size_t i = 0; i < volumes.size(); ++i) {
    auto& v = volumes[i];
    o.begin_object().key("name").str(pod_volume_name(i));
    if (v.backend == volume_mount::backend_kind::pvc) {
      o.key("persistentVolumeClaim")
        .begin_object()
        .key("claimName")
        .str(v.claim_name)
        .key("readOnly")
        .boolean(v.read_only)
        .end_object();
    } else {
      // The path is the Kubernetes node's: created there when missing, as
      // Docker does on its host.
      o.key("hostPath")
        .begin_object()
        .key("path")
        .str(v.host_path)
        .key("type")
        .str("DirectoryOrCreate")
        .end_object();
    }
    o.end_object();
  }
  o.end_array();
}

std::string string_at(const json::Value& obj, std::string_view name) {
  if (!obj.IsObject())
    return {};
  auto v = json::present(obj, name);
  return v != nullptr && v->IsString() ? std::string{json::view(*v)}
                                       : std::string{};
}

const json::Value* object_at(const json::Value& obj, std::string_view name) {
  if (!obj.IsObject())
    return nullptr;
  auto v = json::present(obj, name);
  return v != nullptr && v->IsObject() ? v : nullptr;
}

const json::Value* array_at(const json::Value& obj, std::string_view name) {
  if (!obj.IsObject())
    return nullptr;
  auto v = json::present(obj, name);
  return v != nullptr && v->IsArray() ? v : nullptr;
}

/// Image pull errors of the kubelet: permanent enough to fail a create.
bool is_pull_error(const std::string& reason) {
  return reason == "ErrImagePull" || reason == "ImagePullBackOff"
         || reason == "InvalidImageName" || reason == "ErrImageNeverPull";
}

/// Reads the container statuses into `f`: failures, the sandbox
/// container's exit code, progress.
void read_containers(const json::Value& status, pod_facts& f) {
  if (auto inits = array_at(status, "initContainerStatuses")) {
    for (auto& c : inits->GetArray()) {
      auto state = object_at(c, "state");
      if (state == nullptr)
        continue;
      if (auto w = object_at(*state, "waiting")) {
        auto reason = string_at(*w, "reason");
        if (is_pull_error(reason)) {
          f.fail_reason = "EXECD_DISTRIBUTION_FAILED";
          f.fail_message = "Failed to pull the execd image "
                           + string_at(c, "image") + " (" + reason
                           + "): " + string_at(*w, "message")
                           + " (runtime.execd_image)";
          return;
        }
        if (!reason.empty())
          f.progress = "Pod is initializing: " + reason;
      }
      if (auto t = object_at(*state, "terminated")) {
        auto code = json::present(*t, "exitCode");
        if (code != nullptr && code->IsInt() && code->GetInt() != 0) {
          f.fail_reason = "EXECD_DISTRIBUTION_FAILED";
          f.fail_message = "Copying execd into the pod failed (init "
                           "container exited with code "
                           + std::to_string(code->GetInt()) + ": "
                           + string_at(*t, "message") + ")";
          return;
        }
      }
    }
  }
  auto cs = array_at(status, "containerStatuses");
  if (cs == nullptr)
    return;
  for (auto& c : cs->GetArray()) {
    auto name = string_at(c, "name");
    auto state = object_at(c, "state");
    if (state == nullptr)
      continue;
    bool sidecar = name == egress_container;
    if (auto w = object_at(*state, "waiting")) {
      auto reason = string_at(*w, "reason");
      auto message = string_at(*w, "message");
      if (is_pull_error(reason)) {
        f.fail_reason = sidecar ? "EGRESS_SIDECAR_FAILED" : "IMAGE_PULL_FAILED";
        f.fail_message = "Failed to pull image " + string_at(c, "image")
                         + " (" + reason + ")"
                         + (message.empty() ? "" : ": " + message);
        return;
      }
      if (reason == "CreateContainerConfigError"
          || reason == "CreateContainerError" || reason == "RunContainerError"
          || reason == "CrashLoopBackOff") {
        f.fail_reason = sidecar ? "EGRESS_SIDECAR_FAILED"
                                : (reason == "RunContainerError"
                                       || reason == "CrashLoopBackOff"
                                     ? "CONTAINER_START_FAILED"
                                     : "CONTAINER_CREATE_FAILED");
        f.fail_message = "Container '" + name + "' cannot start (" + reason
                         + ")" + (message.empty() ? "" : ": " + message);
        return;
      }
      if (!reason.empty())
        f.progress = "Container '" + name + "' is waiting: " + reason;
    }
    if (auto t = object_at(*state, "terminated"); t != nullptr && !sidecar) {
      auto code = json::present(*t, "exitCode");
      f.exit_code = code != nullptr && code->IsInt() ? code->GetInt() : 1;
    }
  }
}

} // namespace

port_map pod_ports(bool egress) {
  port_map p;
  p.execd = execd_port;
  p.http = http_port;
  p.egress = egress ? egress_api_port : 0;
  return p;
}

std::string pod_name(const std::string& id) {
  return "sandbox-" + id;
}

std::string pull_secret_name(const std::string& id) {
  return "sandbox-" + id + "-pull";
}

std::string node_selector(const std::string& node, const std::string& host) {
  return std::string{node_label} + "=" + node + "," + host_label + "=" + host;
}

std::string spec_hash(std::string_view spec_json) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : spec_json) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(h));
  return buf;
}

std::string make_pod(const node_config& cfg, const sandbox_instance& x,
                     const std::string& incarnation,
                     const std::vector<volume_mount>& volumes) {
  auto spec_json = codec::spec_to_json(x.spec);
  writer o;
  o.begin_object();
  o.key("apiVersion").str("v1").key("kind").str("Pod");
  o.key("metadata").begin_object();
  o.key("name").str(pod_name(x.id));
  o.key("labels").begin_object();
  o.key(id_label).str(x.id);
  o.key(node_label).str(x.node);
  o.key(host_label).str(x.runtime_host);
  if (!incarnation.empty())
    o.key(incarnation_label).str(incarnation);
  if (!x.member_of.empty())
    o.key(pool_label).str(x.member_of);
  o.end_object();
  o.key("annotations").begin_object();
  if (!x.member_of.empty())
    o.key(member_annotation).str(member_idle);
  o.key(created_annotation).str(codec::format_time(x.created_us));
  if (x.expires_us != 0)
    o.key(expires_annotation).str(codec::format_time(x.expires_us));
  o.key(metadata_annotation).str(codec::map_to_json(x.spec.metadata));
  o.key(spec_annotation).str(spec_json);
  o.key(spec_hash_annotation).str(spec_hash(spec_json));
  if (!x.access_token.empty())
    o.key(access_token_annotation).str(x.access_token);
  if (!x.egress_token.empty())
    o.key(egress_token_annotation).str(x.egress_token);
  o.end_object();
  o.end_object(); // metadata
  o.key("spec").begin_object();
  // An exited sandbox stays exited, as a Docker container does.
  o.key("restartPolicy").str("Never");
  o.key("terminationGracePeriodSeconds").num(5);
  // Sandboxes run untrusted code: no credentials of the API server.
  o.key("automountServiceAccountToken").boolean(false);
  if (!cfg.kubernetes.service_account.empty())
    o.key("serviceAccountName").str(cfg.kubernetes.service_account);
  if (!cfg.secure_runtime.type.empty()
      && !cfg.secure_runtime.k8s_runtime_class.empty())
    o.key("runtimeClassName").str(cfg.secure_runtime.k8s_runtime_class);
  if (!x.spec.image_username.empty() || !x.spec.image_password.empty())
    o.key("imagePullSecrets")
      .begin_array()
      .begin_object()
      .key("name")
      .str(pull_secret_name(x.id))
      .end_object()
      .end_array();
  o.key("initContainers").begin_array();
  write_init_container(o, cfg);
  o.end_array();
  o.key("containers").begin_array();
  write_sandbox_container(o, cfg, x, volumes);
  if (!x.egress_token.empty())
    write_egress_container(o, cfg, x);
  o.end_array();
  write_volumes(o, volumes);
  o.end_object(); // spec
  o.end_object();
  return o.release();
}

std::string make_pull_secret(const sandbox_instance& x,
                             const std::string& incarnation) {
  if (x.spec.image_username.empty() && x.spec.image_password.empty())
    return {};
  // The registry is the image reference's first component when it looks
  // like a host (has a dot or a port, or is localhost), else Docker Hub.
  auto& image = x.spec.image;
  std::string registry = "https://index.docker.io/v1/";
  if (auto slash = image.find('/'); slash != std::string::npos) {
    auto first = image.substr(0, slash);
    if (first.find('.') != std::string::npos
        || first.find(':') != std::string::npos || first == "localhost")
      registry = first;
  }
  // Standard base64 (the `auth` of a Docker config).
  auto auth = base64url_encode(x.spec.image_username + ":"
                               + x.spec.image_password);
  for (auto& c : auth)
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  writer cfg;
  cfg.begin_object().key("auths").begin_object().key(registry).begin_object();
  cfg.key("username").str(x.spec.image_username);
  cfg.key("password").str(x.spec.image_password);
  cfg.key("auth").str(auth);
  cfg.end_object().end_object().end_object();
  writer o;
  o.begin_object();
  o.key("apiVersion").str("v1").key("kind").str("Secret");
  o.key("metadata").begin_object();
  o.key("name").str(pull_secret_name(x.id));
  o.key("labels").begin_object();
  o.key(secret_for_label).str(x.id);
  o.key(node_label).str(x.node);
  o.key(host_label).str(x.runtime_host);
  if (!incarnation.empty())
    o.key(incarnation_label).str(incarnation);
  o.end_object();
  o.end_object();
  o.key("type").str("kubernetes.io/dockerconfigjson");
  o.key("stringData")
    .begin_object()
    .key(".dockerconfigjson")
    .str(cfg.release())
    .end_object();
  o.end_object();
  return o.release();
}

void write_expiry(writer& o, int64_t expires_us) {
  if (expires_us != 0)
    o.str(codec::format_time(expires_us));
  else
    o.null();
}

std::string state_patch(int64_t expires_us, const string_map& metadata) {
  writer o;
  o.begin_object().key("metadata").begin_object().key("annotations");
  o.begin_object();
  o.key(expires_annotation);
  write_expiry(o, expires_us);
  o.key(metadata_annotation).str(codec::map_to_json(metadata));
  o.end_object();
  o.end_object().end_object();
  return o.release();
}

std::optional<pod_facts> read_pod(std::string_view text) {
  rapidjson::Document doc;
  if (base::parse_json(doc, text) != base::json_status::ok || !doc.IsObject())
    return std::nullopt;
  auto meta = object_at(doc, "metadata");
  if (meta == nullptr)
    return std::nullopt;
  pod_facts f;
  f.name = string_at(*meta, "name");
  if (auto labels = object_at(*meta, "labels")) {
    f.id = string_at(*labels, id_label);
    f.node = string_at(*labels, node_label);
    f.host = string_at(*labels, host_label);
    f.incarnation = string_at(*labels, incarnation_label);
    f.pool = string_at(*labels, pool_label);
  }
  if (f.id.empty())
    return std::nullopt;
  f.deleting = !string_at(*meta, "deletionTimestamp").empty();
  if (auto a = object_at(*meta, "annotations")) {
    f.spec_json = string_at(*a, spec_annotation);
    f.spec_hash = string_at(*a, spec_hash_annotation);
    f.metadata_json = string_at(*a, metadata_annotation);
    f.access_token = string_at(*a, access_token_annotation);
    f.egress_token = string_at(*a, egress_token_annotation);
    f.member_state = string_at(*a, member_annotation);
    codec::parse_time(string_at(*a, created_annotation), f.created_us);
    if (auto e = string_at(*a, expires_annotation); !e.empty())
      codec::parse_time(e, f.expires_us);
  }
  auto status = object_at(doc, "status");
  static const json::Value empty{rapidjson::kObjectType};
  const json::Value& st = status != nullptr ? *status : empty;
  f.phase = string_at(st, "phase");
  f.pod_ip = string_at(st, "podIP");
  if (auto conds = array_at(st, "conditions")) {
    for (auto& c : conds->GetArray()) {
      auto type = string_at(c, "type");
      auto value = string_at(c, "status");
      if (type == "Ready")
        f.ready = value == "True";
      else if (type == "PodScheduled" && value == "False")
        f.unschedulable = string_at(c, "message").empty()
                            ? string_at(c, "reason")
                            : string_at(c, "message");
    }
  }
  read_containers(st, f);
  if (f.deleting) {
    f.workload = "removing";
  } else if (f.phase == "Succeeded" || f.phase == "Failed") {
    f.workload = workload::exited;
    if (f.phase == "Failed" && f.exit_code == 0)
      f.exit_code = 1;
    if (f.phase == "Succeeded")
      f.exit_code = 0;
  } else if (f.phase == "Running") {
    f.workload = workload::running;
  } else {
    f.workload = "pending";
  }
  if (f.progress.empty() && !f.unschedulable.empty())
    f.progress = "Pod cannot be scheduled yet: " + f.unschedulable;
  return f;
}

} // namespace osb::runtimes::kubernetes
