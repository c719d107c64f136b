#include "execd/stream.hpp"

#include "execd/json.hpp"

namespace osb::execd {

void encode_event(std::string& out, const stream_event& x) {
  out += "{\"type\":";
  append_json_string(out, x.type);
  if (!x.text.empty()) {
    out += ",\"text\":";
    append_json_string(out, x.text);
  }
  if (x.execution_count) {
    out += ",\"execution_count\":";
    out += std::to_string(*x.execution_count);
  }
  if (x.execution_time != 0) {
    out += ",\"execution_time\":";
    out += std::to_string(x.execution_time);
  }
  out += ",\"timestamp\":";
  out += std::to_string(x.timestamp);
  if (x.error) {
    out += ",\"error\":{\"ename\":";
    append_json_string(out, x.error->ename);
    out += ",\"evalue\":";
    append_json_string(out, x.error->evalue);
    out += ",\"traceback\":[";
    for (size_t i = 0; i < x.error->traceback.size(); ++i) {
      if (i > 0)
        out += ',';
      append_json_string(out, x.error->traceback[i]);
    }
    out += "]}";
  }
  out += "}\n\n";
}

std::string encode_init(std::string_view id, int64_t ts) {
  stream_event ev;
  ev.type = "init";
  ev.text = std::string{id};
  ev.timestamp = ts;
  std::string out;
  encode_event(out, ev);
  return out;
}

std::string encode_ping(int64_t ts) {
  stream_event ev;
  ev.type = "ping";
  ev.text = "pong";
  ev.timestamp = ts;
  std::string out;
  encode_event(out, ev);
  return out;
}

std::string encode_output(std::string_view type, std::string_view text,
                          int64_t ts) {
  std::string out;
  out.reserve(text.size() + 64);
  out += "{\"type\":";
  append_json_string(out, type);
  out += ",\"text\":";
  append_json_string(out, text);
  out += ",\"timestamp\":";
  out += std::to_string(ts);
  out += "}\n\n";
  return out;
}

std::string encode_count(int64_t count, int64_t ts) {
  stream_event ev;
  ev.type = "execution_count";
  ev.execution_count = count;
  ev.timestamp = ts;
  std::string out;
  encode_event(out, ev);
  return out;
}

std::string encode_status(std::string_view text, int64_t ts) {
  stream_event ev;
  ev.type = "status";
  ev.text = std::string{text};
  ev.timestamp = ts;
  std::string out;
  encode_event(out, ev);
  return out;
}

std::string encode_result(std::string_view results_json, int64_t ts) {
  std::string out;
  out.reserve(results_json.size() + 64);
  out += "{\"type\":\"result\",\"timestamp\":";
  out += std::to_string(ts);
  out += ",\"results\":";
  out.append(results_json.data(), results_json.size());
  out += "}\n\n";
  return out;
}

std::string encode_complete(int64_t execution_time_ms, int64_t ts) {
  stream_event ev;
  ev.type = "execution_complete";
  ev.execution_time = execution_time_ms;
  ev.timestamp = ts;
  std::string out;
  encode_event(out, ev);
  return out;
}

std::string encode_error(std::string_view ename, std::string_view evalue,
                         const std::vector<std::string>& traceback,
                         int64_t ts) {
  stream_event ev;
  ev.type = "error";
  ev.timestamp = ts;
  ev.error = stream_error{std::string{ename}, std::string{evalue}, traceback};
  std::string out;
  encode_event(out, ev);
  return out;
}

} // namespace osb::execd
