#include "runtimes/docker/docker_api.hpp"

#include "base/json.hpp"
#include "core/base64.hpp"
#include "runtimes/docker/api_json.hpp"

// Image references, pulls and their progress (the image part of the
// Engine API helpers declared in docker_api.hpp).
namespace osb::runtimes::docker {

using namespace detail;

// -- images -------------------------------------------------------------------

image_ref parse_image_ref(std::string_view ref) {
  image_ref result;
  std::string_view name = ref;
  std::string_view digest;
  if (auto at = ref.find('@'); at != std::string_view::npos) {
    name = ref.substr(0, at);
    digest = ref.substr(at + 1);
  }
  // A colon after the last slash separates the tag; one before it belongs
  // to a registry host:port.
  std::string_view tag;
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon != std::string_view::npos
      && (slash == std::string_view::npos || colon > slash)) {
    tag = name.substr(colon + 1);
    name = name.substr(0, colon);
  }
  result.repository = std::string{name};
  if (!digest.empty())
    result.tag = std::string{digest};
  else if (!tag.empty())
    result.tag = std::string{tag};
  else
    result.tag = "latest";
  return result;
}

std::string pull_target(const image_ref& ref, std::string_view platform) {
  auto result = std::string{api_prefix} + "/images/create?fromImage="
                + url_encode(ref.repository) + "&tag=" + url_encode(ref.tag);
  if (!platform.empty())
    result += "&platform=" + url_encode(platform);
  return result;
}

std::string registry_auth(std::string_view username,
                          std::string_view password) {
  rapidjson::StringBuffer buf;
  writer_t w{buf};
  w.StartObject();
  write_key(w, "username");
  write_str(w, username);
  write_key(w, "password");
  write_str(w, password);
  w.EndObject();
  return base64url_encode({buf.GetString(), buf.GetSize()});
}

std::optional<std::string> pull_stream_error(std::string_view body) {
  // Docker writes one JSON object per line; parsing value after value also
  // copes with objects that are not newline-separated.
  // Docker's progress objects are flat; a deep one is garbage we refuse
  // before RapidJSON recurses into it.
  if (base::json_too_deep(body) != std::string_view::npos)
    return std::nullopt;
  std::string copy{body};
  rapidjson::StringStream ss{copy.c_str()};
  for (;;) {
    rapidjson::Document doc;
    doc.ParseStream<rapidjson::kParseStopWhenDoneFlag>(ss);
    if (doc.HasParseError())
      return std::nullopt; // End of stream (or garbage we cannot judge).
    if (auto detail = member(doc, "errorDetail")) {
      if (auto msg = string_of(*detail, "message"); !msg.empty())
        return msg;
    }
    if (auto err = member(doc, "error"); err != nullptr) {
      if (err->IsString())
        return std::string{err->GetString(), err->GetStringLength()};
      return std::string{"unknown error"};
    }
  }
}

void pull_tracker::feed(std::string_view chunk) {
  partial_.append(chunk.data(), chunk.size());
  size_t start = 0;
  for (;;) {
    auto eol = partial_.find('\n', start);
    if (eol == std::string::npos)
      break;
    line(std::string_view{partial_}.substr(start, eol - start));
    start = eol + 1;
  }
  partial_.erase(0, start);
}

void pull_tracker::line(std::string_view x) {
  rapidjson::Document doc;
  base::parse_json(doc, x); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsObject())
    return;
  if (!error_) {
    if (auto detail = member(doc, "errorDetail"))
      if (auto msg = string_of(*detail, "message"); !msg.empty())
        error_ = msg;
    if (!error_)
      if (auto err = member(doc, "error"))
        error_ = err->IsString() ? std::string{err->GetString()}
                                 : std::string{"unknown error"};
  }
  auto id = string_of(doc, "id");
  auto status = string_of(doc, "status");
  // Layer lines only ("Pulling from <repo>" names the tag in `id`).
  if (id.empty() || status.empty() || status.rfind("Pulling from", 0) == 0)
    return;
  if (status == "Already exists") {
    // Present locally: neither downloaded nor counted.
    layers_.erase(id);
    return;
  }
  auto& l = layers_[id];
  if (status == "Downloading") {
    if (auto detail = member(doc, "progressDetail")) {
      l.current = uint_of(*detail, "current");
      if (auto total = uint_of(*detail, "total"); total > 0)
        l.total = total;
    }
  } else if (status == "Download complete" || status == "Pull complete"
             || status == "Verifying Checksum") {
    l.downloaded = true;
    l.current = l.total;
  } else if (status == "Extracting") {
    l.downloaded = true;
    l.current = l.total;
    extracting_ = true;
  }
}

uint64_t pull_tracker::current() const {
  uint64_t sum = 0;
  for (auto& [id, l] : layers_)
    if (l.total > 0)
      sum += std::min(l.current, l.total);
  return sum;
}

uint64_t pull_tracker::total() const {
  uint64_t sum = 0;
  for (auto& [id, l] : layers_)
    sum += l.total;
  return sum;
}

std::string pull_tracker::describe(std::string_view image) const {
  auto result = "Pulling image " + std::string{image};
  auto all = total();
  if (all == 0)
    return result + ".";
  bool all_down = std::all_of(layers_.begin(), layers_.end(),
                              [](auto& kv) { return kv.second.downloaded; });
  if (all_down && extracting_)
    return result + ": extracting (" + format_mb(all) + " MB)";
  auto cur = current();
  auto pct = cur * 100 / all;
  return result + ": " + std::to_string(pct) + "% (" + format_mb(cur) + "/"
         + format_mb(all) + " MB)";
}

} // namespace osb::runtimes::docker
