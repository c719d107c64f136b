#pragma once

// A scripted Jupyter kernel for execd's unit tests: the test binary itself,
// re-executed with OSB_FAKE_KERNEL=1 (kernelspec argv: the binary and the
// connection file). It serves ZMTP 3.0 as ROUTER (shell, control) and PUB
// (iopub) with signed messages, so execd's kernel client, the event
// mapping and the context bookkeeping are tested against real processes
// and sockets without Python.
//
// Each line of an execute_request's code is a command:
//   out TEXT / err TEXT   a stdout / stderr stream message (TEXT + "\n")
//   result TEXT           execute_result {text/plain, text/html}
//   display               display_data {image/png, text/plain}
//   error                 error ValueError "bad" (reply status error)
//   sleep MS              sleeps; SIGINT makes it a KeyboardInterrupt error
//   die                   exits at once (status 3)
//   noidle                no final idle status
//   noreply               no execute_reply
//   flood N               N stdout messages of 64 KiB

#include "execd/digest.hpp"
#include "execd/json.hpp"
#include "execd/util.hpp"
#include "execd/zmtp.hpp"

#include <rapidjson/document.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace osb::execd::test::fake_kernel {

inline std::atomic<bool> interrupted{false};

struct peer {
  int fd = -1;
  int kind = 0; // 0 shell, 1 iopub, 2 control
  bool ready = false;
  bool subscribed = false;
  std::string greet;
  zmtp_parser parser;
};

struct kernel_state {
  std::string key;
  std::string session = "fake-session";
  int count = 0;
  std::vector<peer> peers;
};

inline int listen_on(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    ::_exit(5);
  ::listen(fd, 16);
  return fd;
}

inline void write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0)
      return;
    off += static_cast<size_t>(n);
  }
}

inline std::string header(const std::string& type) {
  json_writer w;
  w.begin_object()
    .key("msg_id")
    .string(new_uuid())
    .key("session")
    .string("fake")
    .key("username")
    .string("kernel")
    .key("date")
    .string("2026-01-01T00:00:00Z")
    .key("msg_type")
    .string(type)
    .key("version")
    .string("5.3")
    .end_object();
  return w.take();
}

inline std::string frames(kernel_state& k, const std::string& topic,
                          const std::string& type, const std::string& parent,
                          const std::string& content) {
  auto h = header(type);
  std::string meta = "{}";
  auto sig = hmac_sha256{k.key}.hex(h, parent, meta, content);
  std::vector<std::string> parts;
  if (!topic.empty())
    parts.push_back(topic);
  for (auto& p : {std::string{"<IDS|MSG>"}, sig, h, parent, meta, content})
    parts.push_back(p);
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i)
    zmtp_append_frame(out, parts[i], i + 1 < parts.size());
  return out;
}

inline void publish(kernel_state& k, const std::string& type,
                    const std::string& parent, const std::string& content) {
  auto bytes = frames(k, "kernel.fake." + type, type, parent, content);
  for (auto& p : k.peers)
    if (p.kind == 1 && p.subscribed)
      write_all(p.fd, bytes);
}

inline void status(kernel_state& k, const std::string& parent,
                   const char* state) {
  publish(k, "status", parent,
          std::string{R"({"execution_state":")"} + state + "\"}");
}

inline std::string text_content(const char* name, const std::string& text) {
  json_writer w;
  w.begin_object().key("name").string(name).key("text").string(text);
  w.end_object();
  return w.take();
}

inline void run_code(kernel_state& k, peer& p, const std::string& parent,
                     const std::string& code) {
  ++k.count;
  status(k, parent, "busy");
  bool idle = true;
  bool reply = true;
  bool failed = false;
  std::istringstream lines{code};
  std::string line;
  while (std::getline(lines, line)) {
    auto sp = line.find(' ');
    auto cmd = line.substr(0, sp);
    auto arg = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (cmd == "out" || cmd == "err") {
      publish(k, "stream", parent,
              text_content(cmd == "out" ? "stdout" : "stderr", arg + "\n"));
    } else if (cmd == "result") {
      json_writer w;
      w.begin_object()
        .key("execution_count")
        .integer(k.count)
        .key("data")
        .begin_object()
        .key("text/plain")
        .string(arg)
        .key("text/html")
        .string("<b>" + arg + "</b>")
        .end_object()
        .key("metadata")
        .begin_object()
        .end_object()
        .end_object();
      publish(k, "execute_result", parent, w.take());
    } else if (cmd == "display") {
      publish(k, "display_data", parent,
              R"({"data":{"text/plain":"<Figure>","image/png":"iVBORw0KGgo="},"metadata":{}})");
    } else if (cmd == "error") {
      publish(k, "error", parent,
              R"({"ename":"ValueError","evalue":"bad","traceback":["tb1","tb2"]})");
      failed = true;
    } else if (cmd == "sleep") {
      interrupted = false;
      auto until = std::atoi(arg.c_str());
      for (int i = 0; i < until && !interrupted; i += 5)
        ::usleep(5000);
      if (interrupted) {
        publish(k, "error", parent,
                R"({"ename":"KeyboardInterrupt","evalue":"","traceback":[]})");
        failed = true;
      }
    } else if (cmd == "die") {
      ::_exit(3);
    } else if (cmd == "noidle") {
      idle = false;
    } else if (cmd == "noreply") {
      reply = false;
    } else if (cmd == "flood") {
      std::string chunk(65535, 'x');
      auto content = text_content("stdout", chunk + "\n");
      for (int i = 0; i < std::atoi(arg.c_str()); ++i)
        publish(k, "stream", parent, content);
    }
  }
  if (reply) {
    std::string content
      = failed ? R"({"status":"error","ename":"ValueError","evalue":"bad","traceback":[],"execution_count":)"
                 + std::to_string(k.count) + "}"
               : R"({"status":"ok","user_expressions":{},"execution_count":)"
                   + std::to_string(k.count) + "}";
    write_all(p.fd, frames(k, "", "execute_reply", parent, content));
  }
  if (idle)
    status(k, parent, "idle");
}

inline void handle(kernel_state& k, peer& p, std::vector<std::string>& parts) {
  size_t i = 0;
  while (i < parts.size() && parts[i] != "<IDS|MSG>")
    ++i;
  if (p.kind == 1) {
    if (!parts.empty() && !parts[0].empty() && parts[0][0] == '\x01')
      p.subscribed = true;
    return;
  }
  if (parts.size() < i + 6)
    return;
  auto& hdr = parts[i + 2];
  auto& content = parts[i + 5];
  if (hmac_sha256{k.key}.hex(hdr, parts[i + 3], parts[i + 4], content)
      != parts[i + 1])
    ::_exit(6); // execd must sign correctly
  rapidjson::Document h;
  h.Parse(hdr.c_str());
  std::string type = h["msg_type"].GetString();
  if (type == "kernel_info_request") {
    status(k, hdr, "busy");
    write_all(p.fd, frames(k, "", "kernel_info_reply", hdr,
                           R"({"status":"ok","protocol_version":"5.3","language_info":{"name":"fake"}})"));
    status(k, hdr, "idle");
  } else if (type == "execute_request") {
    rapidjson::Document c;
    c.Parse(content.c_str());
    run_code(k, p, hdr, c["code"].GetString());
  } else if (type == "shutdown_request") {
    write_all(p.fd, frames(k, "", "shutdown_reply", hdr,
                           R"({"status":"ok","restart":false})"));
    ::_exit(0);
  }
}

/// Runs the fake kernel on `conn_file`; never returns.
[[noreturn]] inline void serve(const std::string& conn_file) {
  ::signal(SIGINT, [](int) { interrupted = true; });
  std::ifstream in{conn_file};
  std::stringstream ss;
  ss << in.rdbuf();
  rapidjson::Document c;
  c.Parse(ss.str().c_str());
  kernel_state k;
  k.key = c["key"].GetString();
  int listeners[3] = {listen_on(c["shell_port"].GetInt()),
                      listen_on(c["iopub_port"].GetInt()),
                      listen_on(c["control_port"].GetInt())};
  for (;;) {
    std::vector<pollfd> p;
    for (int l : listeners)
      p.push_back({l, POLLIN, 0});
    for (auto& x : k.peers)
      p.push_back({x.fd, POLLIN, 0});
    if (::poll(p.data(), p.size(), -1) < 0)
      continue;
    for (int i = 0; i < 3; ++i)
      if (p[i].revents & POLLIN) {
        peer np;
        np.fd = ::accept4(listeners[i], nullptr, nullptr, SOCK_CLOEXEC);
        int one = 1;
        ::setsockopt(np.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        np.kind = i;
        write_all(np.fd, zmtp_greeting());
        k.peers.push_back(std::move(np));
      }
    for (size_t j = 3; j < p.size(); ++j) {
      if (!(p[j].revents & (POLLIN | POLLHUP)))
        continue;
      auto& x = k.peers[j - 3];
      char buf[65536];
      auto n = ::recv(x.fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        ::close(x.fd);
        x.fd = -1;
        continue;
      }
      std::string_view data{buf, static_cast<size_t>(n)};
      if (x.greet.size() < 64) {
        auto take = std::min(data.size(), 64 - x.greet.size());
        x.greet.append(data.substr(0, take));
        data.remove_prefix(take);
        if (x.greet.size() == 64)
          write_all(x.fd, zmtp_ready(x.kind == 1 ? "PUB" : "ROUTER"));
      }
      x.parser.feed(data);
      std::vector<std::string> parts;
      for (;;) {
        auto r = x.parser.next(parts);
        if (r == zmtp_parser::result::command) {
          x.ready = true;
          continue;
        }
        if (r != zmtp_parser::result::message)
          break;
        handle(k, x, parts);
      }
    }
    std::vector<peer> alive;
    for (auto& x : k.peers)
      if (x.fd >= 0)
        alive.push_back(std::move(x));
    k.peers = std::move(alive);
  }
}

/// Runs before main() in the test binary: turns it into the fake kernel
/// when started as one.
inline bool maybe_serve() {
  if (std::getenv("OSB_FAKE_KERNEL") == nullptr)
    return false;
  std::ifstream cmd{"/proc/self/cmdline"};
  std::string arg;
  std::vector<std::string> args;
  while (std::getline(cmd, arg, '\0'))
    args.push_back(arg);
  if (args.size() < 2)
    ::_exit(4);
  serve(args.back());
}

} // namespace osb::execd::test::fake_kernel
