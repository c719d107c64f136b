#include "runtimes/docker/docker_api.hpp"

#include "base/json.hpp"
#include "runtimes/docker/api_json.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdlib>
#include <set>

namespace osb::runtimes::docker {

namespace {

using namespace detail;

constexpr std::string_view default_socket = "unix:///var/run/docker.sock";

void write_strings(writer_t& w, std::string_view key,
                   const std::vector<std::string>& xs) {
  if (xs.empty())
    return;
  write_key(w, key);
  w.StartArray();
  for (auto& x : xs)
    write_str(w, x);
  w.EndArray();
}

bool starts_with(std::string_view x, std::string_view prefix) {
  return x.substr(0, prefix.size()) == prefix;
}

std::map<std::string, std::string> labels_of(const rapidjson::Value* x) {
  std::map<std::string, std::string> result;
  if (x == nullptr || !x->IsObject())
    return result;
  for (auto& kv : x->GetObject())
    if (kv.value.IsString())
      result.emplace(
        std::string{kv.name.GetString(), kv.name.GetStringLength()},
        std::string{kv.value.GetString(), kv.value.GetStringLength()});
  return result;
}

/// First non-empty IPAddress of `settings.Networks`, else `settings.IPAddress`.
std::string ip_of(const rapidjson::Value* settings) {
  if (settings == nullptr)
    return {};
  if (auto nets = member(*settings, "Networks"); nets && nets->IsObject())
    for (auto& kv : nets->GetObject())
      if (auto ip = string_of(kv.value, "IPAddress"); !ip.empty())
        return ip;
  return string_of(*settings, "IPAddress");
}

/// `{"label":["k=v","k2"]}`, url-encoded.
std::string label_filter(const std::map<std::string, std::string>& labels,
                         std::string_view reference = {}) {
  rapidjson::StringBuffer buf;
  writer_t w{buf};
  w.StartObject();
  if (!reference.empty()) {
    write_key(w, "reference");
    w.StartArray();
    write_str(w, reference);
    w.EndArray();
  }
  write_key(w, "label");
  w.StartArray();
  for (auto& [k, v] : labels)
    write_str(w, v.empty() ? k : k + "=" + v);
  w.EndArray();
  w.EndObject();
  return url_encode({buf.GetString(), buf.GetSize()});
}

bool bool_of(const rapidjson::Value& obj, const char* key) {
  auto x = member(obj, key);
  return x != nullptr && x->IsBool() && x->GetBool();
}

int64_t int_of(const rapidjson::Value& obj, const char* key) {
  auto x = member(obj, key);
  if (x == nullptr)
    return 0;
  if (x->IsInt64())
    return x->GetInt64();
  if (x->IsUint64())
    return static_cast<int64_t>(x->GetUint64());
  return 0;
}

std::string lower_ascii(std::string_view x) {
  std::string result{x};
  for (auto& c : result)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return result;
}

std::string strip_slash(std::string x) {
  if (!x.empty() && x.front() == '/')
    x.erase(0, 1);
  return x;
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic
  // Gregorian calendar.
  y -= m <= 2;
  auto era = (y >= 0 ? y : y - 399) / 400;
  auto yoe = static_cast<unsigned>(y - era * 400);
  auto doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  auto doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool parse_digits(std::string_view x, size_t pos, size_t n, int64_t& out) {
  if (pos + n > x.size())
    return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (x[i] < '0' || x[i] > '9')
      return false;
    out = out * 10 + (x[i] - '0');
  }
  return true;
}

} // namespace

// -- daemon address -----------------------------------------------------------

host_address parse_host(std::string_view docker_host) {
  std::string given{docker_host};
  if (given.empty()) {
    auto env = std::getenv("DOCKER_HOST");
    given = env != nullptr && *env != '\0' ? env : std::string{default_socket};
  }
  host_address result;
  result.display = given;
  std::string_view x = given;
  if (starts_with(x, "unix://") || starts_with(x, "/")) {
    result.kind = host_address::kind_t::unix_socket;
    result.path = std::string{starts_with(x, "/") ? x : x.substr(7)};
    if (result.path.empty()) {
      result.kind = host_address::kind_t::unsupported;
      result.error = "Docker host " + given + " names no socket path";
    }
    return result;
  }
  if (starts_with(x, "tcp://") || starts_with(x, "http://")) {
    auto rest = x.substr(x.find("://") + 3);
    rest = rest.substr(0, rest.find('/'));
    std::string_view host = rest;
    std::string_view port = "2375";
    if (starts_with(rest, "[")) {
      auto close = rest.find(']');
      if (close != std::string_view::npos) {
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':')
          port = rest.substr(close + 2);
      }
    } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    result.kind = host_address::kind_t::tcp;
    result.host = std::string{host};
    result.port = std::string{port};
    if (result.host.empty() || result.port.empty()) {
      result.kind = host_address::kind_t::unsupported;
      result.error = "Docker host " + given + " is not a valid tcp address";
    }
    return result;
  }
  result.kind = host_address::kind_t::unsupported;
  auto scheme = x.substr(0, x.find("://"));
  result.error = "Docker host " + given + ": scheme '" + std::string{scheme}
                 + "' is not supported yet (use unix:// or tcp://)";
  return result;
}

// -- daemon -------------------------------------------------------------------

std::string normalize_arch(std::string_view arch) {
  auto x = lower_ascii(arch);
  if (x == "x86_64" || x == "x86-64" || x == "amd64")
    return "amd64";
  if (x == "aarch64" || x == "arm64" || x == "arm64/v8" || x == "arm64v8")
    return "arm64";
  return x;
}

expected<daemon_info> parse_info(std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsObject())
    return failure{failure_kind::failed, "malformed info response"};
  daemon_info info;
  info.os = lower_ascii(string_of(doc, "OSType"));
  info.arch = normalize_arch(string_of(doc, "Architecture"));
  info.version = string_of(doc, "ServerVersion");
  info.default_runtime = string_of(doc, "DefaultRuntime");
  if (auto rts = member(doc, "Runtimes"); rts != nullptr && rts->IsObject()) {
    for (auto& kv : rts->GetObject()) {
      daemon_info::oci_runtime x;
      x.name = {kv.name.GetString(), kv.name.GetStringLength()};
      x.path = string_of(kv.value, "path");
      if (auto args = member(kv.value, "runtimeArgs");
          args != nullptr && args->IsArray())
        for (auto& a : args->GetArray())
          if (a.IsString())
            x.args.emplace_back(a.GetString(), a.GetStringLength());
      info.runtimes.push_back(std::move(x));
    }
  }
  return info;
}

// -- containers ---------------------------------------------------------------

std::string create_target(const container_spec& spec) {
  auto result = std::string{api_prefix} + "/containers/create";
  char sep = '?';
  if (!spec.name.empty()) {
    result += sep;
    result += "name=" + url_encode(spec.name);
    sep = '&';
  }
  if (!spec.platform.empty()) {
    result += sep;
    result += "platform=" + url_encode(spec.platform);
  }
  return result;
}

std::string create_body(const container_spec& spec) {
  rapidjson::StringBuffer buf;
  writer_t w{buf};
  w.StartObject();
  write_key(w, "Image");
  write_str(w, spec.image);
  write_strings(w, "Entrypoint", spec.entrypoint);
  write_strings(w, "Cmd", spec.cmd);
  write_strings(w, "Env", spec.env);
  if (!spec.labels.empty()) {
    write_key(w, "Labels");
    w.StartObject();
    for (auto& [k, v] : spec.labels) {
      write_key(w, k);
      write_str(w, v);
    }
    w.EndObject();
  }
  // Published ports must also be exposed, as the docker CLI does for -p.
  std::set<uint16_t> exposed{spec.exposed_ports.begin(),
                             spec.exposed_ports.end()};
  std::map<uint16_t, std::vector<const port_binding*>> bindings;
  for (auto& p : spec.ports) {
    exposed.insert(p.container_port);
    bindings[p.container_port].push_back(&p);
  }
  if (!exposed.empty()) {
    write_key(w, "ExposedPorts");
    w.StartObject();
    for (auto port : exposed) {
      write_key(w, std::to_string(port) + "/tcp");
      w.StartObject();
      w.EndObject();
    }
    w.EndObject();
  }
  write_key(w, "HostConfig");
  w.StartObject();
  if (!spec.network_mode.empty()) {
    write_key(w, "NetworkMode");
    write_str(w, spec.network_mode);
  }
  if (!spec.runtime.empty()) {
    write_key(w, "Runtime");
    write_str(w, spec.runtime);
  }
  if (!bindings.empty()) {
    write_key(w, "PortBindings");
    w.StartObject();
    for (auto& [port, xs] : bindings) {
      write_key(w, std::to_string(port) + "/tcp");
      w.StartArray();
      for (auto p : xs) {
        w.StartObject();
        write_key(w, "HostIp");
        write_str(w, p->host_ip);
        write_key(w, "HostPort");
        // An empty HostPort lets Docker pick one.
        write_str(w, p->host_port == 0 ? std::string{}
                                       : std::to_string(p->host_port));
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  }
  if (spec.nano_cpus > 0) {
    write_key(w, "NanoCpus");
    w.Int64(spec.nano_cpus);
  }
  if (spec.memory_bytes > 0) {
    write_key(w, "Memory");
    w.Int64(spec.memory_bytes);
  }
  if (spec.pids_limit != 0) {
    write_key(w, "PidsLimit");
    w.Int64(spec.pids_limit);
  }
  write_strings(w, "CapDrop", spec.cap_drop);
  write_strings(w, "CapAdd", spec.cap_add);
  write_strings(w, "SecurityOpt", spec.security_opt);
  write_strings(w, "Binds", spec.binds);
  if (!spec.sysctls.empty()) {
    write_key(w, "Sysctls");
    w.StartObject();
    for (auto& [k, v] : spec.sysctls) {
      write_key(w, k);
      write_str(w, v);
    }
    w.EndObject();
  }
  if (spec.gpu_count != 0) {
    write_key(w, "DeviceRequests");
    w.StartArray();
    w.StartObject();
    write_key(w, "Driver");
    write_str(w, "");
    write_key(w, "Count");
    w.Int64(spec.gpu_count);
    write_key(w, "Capabilities");
    w.StartArray();
    w.StartArray();
    write_str(w, "gpu");
    w.EndArray();
    w.EndArray();
    w.EndObject();
    w.EndArray();
  }
  w.EndObject(); // HostConfig
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string list_target(const std::map<std::string, std::string>& labels) {
  auto result = std::string{api_prefix} + "/containers/json?all=1";
  if (labels.empty())
    return result;
  result += "&filters=";
  result += label_filter(labels);
  return result;
}

std::string container_target(std::string_view id, std::string_view suffix) {
  auto result = std::string{api_prefix} + "/containers/" + url_encode(id);
  result += suffix;
  return result;
}

std::string image_list_target(std::string_view repository,
                              const std::map<std::string, std::string>& labels) {
  return std::string{api_prefix} + "/images/json?filters="
         + label_filter(labels, repository);
}

expected<std::vector<std::string>> parse_image_tags(std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsArray())
    return failure{failure_kind::failed, "image list is not a JSON array"};
  std::vector<std::string> result;
  for (auto& img : doc.GetArray()) {
    auto tags = img.IsObject() ? member(img, "RepoTags") : nullptr;
    if (tags == nullptr || !tags->IsArray())
      continue;
    for (auto& t : tags->GetArray())
      if (t.IsString())
        result.emplace_back(t.GetString(), t.GetStringLength());
  }
  return result;
}

std::string commit_target(std::string_view id, std::string_view repo,
                          std::string_view tag) {
  return std::string{api_prefix} + "/commit?container=" + url_encode(id)
         + "&repo=" + url_encode(repo) + "&tag=" + url_encode(tag)
         + "&pause=true";
}

std::string image_target(std::string_view ref, std::string_view suffix) {
  auto result = std::string{api_prefix} + "/images/" + url_encode(ref);
  result += suffix;
  return result;
}

std::optional<std::string> parse_created_id(std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (doc.HasParseError())
    return std::nullopt;
  auto id = string_of(doc, "Id");
  if (id.empty())
    return std::nullopt;
  return id;
}

expected<container_info> parse_inspect(std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsObject())
    return failure{failure_kind::failed, "malformed inspect response"};
  container_info info;
  info.id = string_of(doc, "Id");
  info.name = strip_slash(string_of(doc, "Name"));
  if (auto cfg = member(doc, "Config"))
    info.labels = labels_of(member(*cfg, "Labels"));
  if (auto state = member(doc, "State")) {
    info.status = string_of(*state, "Status");
    if (auto code = member(*state, "ExitCode"); code && code->IsInt())
      info.exit_code = code->GetInt();
    info.finished_us = parse_rfc3339_us(string_of(*state, "FinishedAt"));
  }
  info.created_us = parse_rfc3339_us(string_of(doc, "Created"));
  info.ip = ip_of(member(doc, "NetworkSettings"));
  if (info.id.empty())
    return failure{failure_kind::failed, "inspect response without Id"};
  return info;
}

expected<container_details> parse_details(std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsObject())
    return failure{failure_kind::failed, "malformed inspect response"};
  container_details d;
  d.id = string_of(doc, "Id");
  if (d.id.empty())
    return failure{failure_kind::failed, "inspect response without Id"};
  d.name = strip_slash(string_of(doc, "Name"));
  d.created = string_of(doc, "Created");
  if (auto cfg = member(doc, "Config")) {
    d.image = string_of(*cfg, "Image");
    d.labels = labels_of(member(*cfg, "Labels"));
    if (auto env = member(*cfg, "Env"); env && env->IsArray())
      for (auto& e : env->GetArray())
        if (e.IsString())
          d.env.emplace_back(e.GetString(), e.GetStringLength());
  }
  if (auto state = member(doc, "State")) {
    d.status = string_of(*state, "Status");
    d.running = bool_of(*state, "Running");
    d.paused = bool_of(*state, "Paused");
    d.oom_killed = bool_of(*state, "OOMKilled");
    d.exit_code = static_cast<int>(int_of(*state, "ExitCode"));
    d.started_at = string_of(*state, "StartedAt");
    d.finished_at = string_of(*state, "FinishedAt");
    d.error = string_of(*state, "Error");
    if (auto health = member(*state, "Health"); health && health->IsObject()) {
      d.health_status = string_of(*health, "Status");
      if (d.health_status.empty())
        d.health_status = "N/A";
      if (auto log = member(*health, "Log"); log && log->IsArray())
        for (auto& e : log->GetArray()) {
          container_details::health_entry h;
          h.start = string_of(e, "Start");
          h.exit_code = static_cast<int>(int_of(e, "ExitCode"));
          h.output = string_of(e, "Output");
          d.health_log.push_back(std::move(h));
        }
    }
  }
  if (auto hc = member(doc, "HostConfig")) {
    d.nano_cpus = int_of(*hc, "NanoCpus");
    d.memory_bytes = int_of(*hc, "Memory");
    d.pids_limit = int_of(*hc, "PidsLimit");
  }
  if (auto ns = member(doc, "NetworkSettings")) {
    if (auto nets = member(*ns, "Networks"); nets && nets->IsObject())
      for (auto& kv : nets->GetObject()) {
        auto ip = string_of(kv.value, "IPAddress");
        d.networks.emplace_back(std::string{kv.name.GetString(),
                                            kv.name.GetStringLength()},
                                ip.empty() ? std::string{"N/A"} : ip);
      }
    if (auto ports = member(*ns, "Ports"); ports && ports->IsObject())
      for (auto& kv : ports->GetObject()) {
        std::vector<std::string> bindings;
        if (kv.value.IsArray())
          for (auto& b : kv.value.GetArray())
            bindings.push_back(string_of(b, "HostIp") + ":"
                               + string_of(b, "HostPort"));
        d.ports.emplace_back(std::string{kv.name.GetString(),
                                         kv.name.GetStringLength()},
                             std::move(bindings));
      }
  }
  return d;
}

std::string logs_target(std::string_view id, const log_query& q) {
  std::string suffix = "/logs?stdout=1&stderr=1";
  suffix += q.timestamps ? "&timestamps=1" : "&timestamps=0";
  suffix += "&tail=";
  suffix += q.tail > 0 ? std::to_string(q.tail) : std::string{"all"};
  if (q.since_s > 0)
    suffix += "&since=" + std::to_string(q.since_s);
  return container_target(id, suffix);
}

std::string demux_logs(std::string_view body) {
  auto is_header = [&](size_t pos) {
    return pos + 8 <= body.size() && static_cast<unsigned char>(body[pos]) <= 2
           && body[pos + 1] == 0 && body[pos + 2] == 0 && body[pos + 3] == 0;
  };
  if (!is_header(0))
    return std::string{body};
  std::string result;
  result.reserve(body.size());
  size_t pos = 0;
  while (pos + 8 <= body.size()) {
    auto byte = [&](size_t i) {
      return static_cast<uint32_t>(static_cast<unsigned char>(body[pos + i]));
    };
    auto len = (byte(4) << 24) | (byte(5) << 16) | (byte(6) << 8) | byte(7);
    pos += 8;
    auto n = std::min<size_t>(len, body.size() - pos);
    result.append(body.data() + pos, n);
    pos += n;
  }
  return result;
}

expected<std::vector<container_info>> parse_list(std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsArray())
    return failure{failure_kind::failed, "malformed list response"};
  std::vector<container_info> result;
  result.reserve(doc.Size());
  for (auto& x : doc.GetArray()) {
    container_info info;
    info.id = string_of(x, "Id");
    if (auto names = member(x, "Names");
        names && names->IsArray() && !names->Empty()
        && (*names)[0].IsString())
      info.name = strip_slash((*names)[0].GetString());
    info.labels = labels_of(member(x, "Labels"));
    info.status = string_of(x, "State");
    if (auto created = member(x, "Created"); created && created->IsInt64())
      info.created_us = created->GetInt64() * 1'000'000;
    info.exit_code = parse_exit_code(string_of(x, "Status"));
    info.ip = ip_of(member(x, "NetworkSettings"));
    result.push_back(std::move(info));
  }
  return result;
}

// -- volumes ------------------------------------------------------------------

namespace {

volume_info volume_of(const rapidjson::Value& x) {
  volume_info v;
  v.name = string_of(x, "Name");
  v.driver = string_of(x, "Driver");
  v.mountpoint = string_of(x, "Mountpoint");
  v.labels = labels_of(member(x, "Labels"));
  return v;
}

} // namespace

std::string volume_target(std::string_view name) {
  return std::string{api_prefix} + "/volumes/" + url_encode(name);
}

std::string
volume_list_target(const std::map<std::string, std::string>& labels) {
  auto result = std::string{api_prefix} + "/volumes";
  if (!labels.empty())
    result += "?filters=" + label_filter(labels);
  return result;
}

std::string
volume_create_body(std::string_view name,
                   const std::map<std::string, std::string>& labels) {
  rapidjson::StringBuffer buf;
  writer_t w{buf};
  w.StartObject();
  write_key(w, "Name");
  write_str(w, name);
  write_key(w, "Driver");
  write_str(w, "local");
  write_key(w, "Labels");
  w.StartObject();
  for (auto& [k, v] : labels) {
    write_key(w, k);
    write_str(w, v);
  }
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

expected<volume_info> parse_volume(std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsObject())
    return failure{failure_kind::failed, "malformed volume response"};
  auto v = volume_of(doc);
  if (v.name.empty())
    return failure{failure_kind::failed, "volume response without Name"};
  return v;
}

expected<std::vector<volume_info>> parse_volume_list(std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsObject())
    return failure{failure_kind::failed, "malformed volume list response"};
  std::vector<volume_info> result;
  if (auto xs = member(doc, "Volumes"); xs && xs->IsArray())
    for (auto& x : xs->GetArray())
      result.push_back(volume_of(x));
  return result;
}

// -- errors -------------------------------------------------------------------

failure_kind kind_of_status(unsigned status) {
  switch (status) {
    case 400:
      return failure_kind::invalid;
    case 404:
      return failure_kind::not_found;
    case 409:
      return failure_kind::conflict;
    default:
      return failure_kind::failed;
  }
}

std::string error_message(unsigned status, std::string_view body) {
  rapidjson::Document doc;
  base::parse_json(doc, body); // a refused depth leaves doc null
  if (!doc.HasParseError())
    if (auto msg = string_of(doc, "message"); !msg.empty())
      return msg;
  std::string text{body.substr(0, 512)};
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  auto result = "HTTP " + std::to_string(status);
  if (!text.empty())
    result += ": " + text;
  return result;
}

failure http_failure(std::string_view what, unsigned status,
                     std::string_view body) {
  return failure{kind_of_status(status),
                 std::string{what} + ": " + error_message(status, body)};
}

// -- encoding -----------------------------------------------------------------

std::string url_encode(std::string_view x) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string result;
  result.reserve(x.size());
  for (unsigned char c : x) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
        || c == '~') {
      result += static_cast<char>(c);
    } else {
      result += '%';
      result += hex[c >> 4];
      result += hex[c & 0xF];
    }
  }
  return result;
}

int64_t parse_rfc3339_us(std::string_view x) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  int64_t year, mon, day, hour, min, sec;
  if (x.size() < 20 || !parse_digits(x, 0, 4, year) || x[4] != '-'
      || !parse_digits(x, 5, 2, mon) || x[7] != '-'
      || !parse_digits(x, 8, 2, day) || (x[10] != 'T' && x[10] != 't'
                                         && x[10] != ' ')
      || !parse_digits(x, 11, 2, hour) || x[13] != ':'
      || !parse_digits(x, 14, 2, min) || x[16] != ':'
      || !parse_digits(x, 17, 2, sec))
    return 0;
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59
      || sec > 60)
    return 0;
  size_t pos = 19;
  int64_t frac_us = 0;
  if (pos < x.size() && x[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < x.size() && x[pos] >= '0' && x[pos] <= '9') {
      if (digits < 6) {
        frac_us = frac_us * 10 + (x[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    for (; digits < 6; ++digits)
      frac_us *= 10;
  }
  int64_t offset_s = 0;
  if (pos >= x.size())
    return 0;
  if (x[pos] == 'Z' || x[pos] == 'z') {
    ++pos;
  } else if (x[pos] == '+' || x[pos] == '-') {
    int64_t oh, om;
    if (!parse_digits(x, pos + 1, 2, oh) || pos + 3 >= x.size()
        || x[pos + 3] != ':' || !parse_digits(x, pos + 4, 2, om))
      return 0;
    offset_s = (oh * 3600 + om * 60) * (x[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return 0;
  }
  if (pos != x.size())
    return 0;
  auto days = days_from_civil(year, static_cast<unsigned>(mon),
                              static_cast<unsigned>(day));
  auto secs = days * 86400 + hour * 3600 + min * 60 + sec - offset_s;
  if (secs < 0)
    return 0; // Docker's zero time (year 1) means "never".
  return secs * 1'000'000 + frac_us;
}

int parse_exit_code(std::string_view status) {
  auto pos = status.find("Exited (");
  if (pos == std::string_view::npos)
    return 0;
  pos += 8;
  bool neg = pos < status.size() && status[pos] == '-';
  if (neg)
    ++pos;
  int code = 0;
  bool any = false;
  while (pos < status.size() && status[pos] >= '0' && status[pos] <= '9') {
    code = code * 10 + (status[pos] - '0');
    any = true;
    ++pos;
  }
  if (!any || pos >= status.size() || status[pos] != ')')
    return 0;
  return neg ? -code : code;
}

} // namespace osb::runtimes::docker
