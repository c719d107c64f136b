// The hot loops of bench/code_interpreter.py, run inside a sandbox's network
// namespace (nsenter) so that execd and the kernel are reached the same way:
//
//   code_bench roundtrip PORT TOKEN CONTEXT CONNECTION_FILE RUNS
//     RUNS interleaved pairs of the same execution of "1+1":
//     - through execd: POST /code on one keep-alive connection, until the
//       stream's last chunk;
//     - straight to the kernel (the floor): execute_request on its shell
//       socket, until execute_reply and the idle status on iopub (what execd
//       waits for too), with execd's own ZMTP and signing code.
//     Prints {"execd_ms":[...],"direct_ms":[...]}.
//   code_bench stream PORT TOKEN CONTEXT MB [KBPS]
//     Runs code printing MB megabytes (64 KiB flushed writes) and reads the
//     stream, at most KBPS kilobytes per second when given. Prints
//     {"bytes":N,"seconds":S}.

#include "execd/json.hpp"
#include "execd/kernel.hpp"
#include "execd/zmtp.hpp"

#include <rapidjson/document.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace osb::execd;
using clock_type = std::chrono::steady_clock;

namespace {

int connect_port(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  return fd;
}

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      std::perror("send");
      std::exit(1);
    }
    off += static_cast<size_t>(n);
  }
}

/// Reads one chunked response to its end; returns the body size. `kbps`
/// > 0 throttles the reading.
size_t read_chunked(int fd, std::string& buf, int64_t kbps = 0) {
  char tmp[65536];
  auto fill = [&] {
    auto n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0) {
      std::fprintf(stderr, "connection closed\n");
      std::exit(1);
    }
    buf.append(tmp, static_cast<size_t>(n));
    if (kbps > 0)
      std::this_thread::sleep_for(
        std::chrono::microseconds(n * 1000000 / (kbps * 1024)));
  };
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos)
    fill();
  if (buf.compare(9, 3, "200") != 0) {
    std::fprintf(stderr, "status: %s\n", buf.substr(0, 200).c_str());
    std::exit(1);
  }
  buf.erase(0, end + 4);
  size_t body = 0;
  for (;;) {
    size_t le;
    while ((le = buf.find("\r\n")) == std::string::npos)
      fill();
    auto size = std::stoul(buf.substr(0, le), nullptr, 16);
    while (buf.size() < le + 2 + size + 2)
      fill();
    body += size;
    buf.erase(0, le + 2 + size + 2);
    if (size == 0)
      return body;
  }
}

std::string run_request(uint16_t port, const std::string& token,
                        const std::string& ctx, const std::string& code) {
  json_writer w;
  w.begin_object().key("code").string(code).key("context").begin_object();
  w.key("id").string(ctx).end_object().end_object();
  auto body = w.take();
  return "POST /code HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port)
         + "\r\nX-EXECD-ACCESS-TOKEN: " + token
         + "\r\nContent-Type: application/json\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n" + body;
}

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t)
    .count();
}

void print_list(const char* key, const std::vector<double>& xs, bool last) {
  std::printf("\"%s\":[", key);
  for (size_t i = 0; i < xs.size(); ++i)
    std::printf("%s%.3f", i ? "," : "", xs[i]);
  std::printf("]%s", last ? "" : ",");
}

int roundtrip(uint16_t port, const std::string& token, const std::string& ctx,
              const std::string& conn_file, int runs) {
  std::ifstream in{conn_file};
  std::stringstream ss;
  ss << in.rdbuf();
  rapidjson::Document c;
  c.Parse(ss.str().c_str());
  if (c.HasParseError() || !c.IsObject()) {
    std::fprintf(stderr, "cannot read %s\n", conn_file.c_str());
    return 1;
  }
  kernel_codec codec{c["key"].GetString(), new_uuid()};
  zmtp_socket shell, iopub;
  std::string err;
  if (!shell.connect(static_cast<uint16_t>(c["shell_port"].GetInt()),
                     "DEALER", 5000, &err)
      || !iopub.connect(static_cast<uint16_t>(c["iopub_port"].GetInt()),
                        "SUB", 5000, &err)
      || !iopub.subscribe("")) {
    std::fprintf(stderr, "kernel: %s\n", err.c_str());
    return 1;
  }
  // Let the subscription settle (the PUB side drops what precedes it).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto direct = [&] {
    auto id = new_uuid();
    auto frames = codec.encode(
      "execute_request", id,
      R"({"code":"1+1","silent":false,"store_history":true,)"
      R"("user_expressions":{},"allow_stdin":false,"stop_on_error":true})");
    std::vector<std::string_view> views(frames.begin(), frames.end());
    shell.send(views);
    bool reply = false, idle = false;
    std::vector<std::string> parts;
    kernel_message m;
    while (!(reply && idle)) {
      bool got = false;
      for (auto* s : {&iopub, &shell}) {
        while (s->pop_buffered(parts)) {
          got = true;
          if (!codec.decode(parts, m, &err) || m.parent_id != id)
            continue;
          if (m.msg_type == "execute_reply")
            reply = true;
          if (m.msg_type == "status"
              && std::string{m.content["execution_state"].GetString()}
                   == "idle")
            idle = true;
        }
      }
      if (got || (reply && idle))
        continue;
      // Both sockets at once, as execd waits.
      pollfd p[2] = {{iopub.fd(), POLLIN, 0}, {shell.fd(), POLLIN, 0}};
      if (::poll(p, 2, 10000) <= 0) {
        std::fprintf(stderr, "kernel: no answer\n");
        std::exit(1);
      }
      if ((p[0].revents && !iopub.fill()) || (p[1].revents && !shell.fill())) {
        std::fprintf(stderr, "kernel: connection closed\n");
        std::exit(1);
      }
    }
  };
  int fd = connect_port(port);
  std::string buf;
  auto req = run_request(port, token, ctx, "1+1");
  auto via_execd = [&] {
    send_all(fd, req);
    read_chunked(fd, buf);
  };
  for (int i = 0; i < 20; ++i) { // warm both paths
    via_execd();
    direct();
  }
  std::vector<double> e, d;
  for (int i = 0; i < runs; ++i) {
    auto t = clock_type::now();
    via_execd();
    e.push_back(ms_since(t));
    t = clock_type::now();
    direct();
    d.push_back(ms_since(t));
  }
  std::printf("{");
  print_list("execd_ms", e, false);
  print_list("direct_ms", d, true);
  std::printf("}\n");
  return 0;
}

int stream(uint16_t port, const std::string& token, const std::string& ctx,
           int mb, int64_t kbps) {
  std::string code = "import sys\nchunk = 'x' * 65535 + '\\n'\nfor _ in range("
                     + std::to_string(mb * 16)
                     + "):\n    sys.stdout.write(chunk)\n    sys.stdout.flush()\n";
  int fd = connect_port(port);
  std::string buf;
  auto t = clock_type::now();
  send_all(fd, run_request(port, token, ctx, code));
  auto n = read_chunked(fd, buf, kbps);
  std::printf("{\"bytes\":%zu,\"seconds\":%.3f}\n", n, ms_since(t) / 1000);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 6 && a[0] == "roundtrip")
    return roundtrip(static_cast<uint16_t>(std::stoi(a[1])), a[2], a[3], a[4],
                     std::stoi(a[5]));
  if ((a.size() == 5 || a.size() == 6) && a[0] == "stream")
    return stream(static_cast<uint16_t>(std::stoi(a[1])), a[2], a[3],
                  std::stoi(a[4]), a.size() == 6 ? std::stoll(a[5]) : 0);
  std::fprintf(stderr,
               "usage: code_bench roundtrip PORT TOKEN CONTEXT CONN RUNS\n"
               "       code_bench stream PORT TOKEN CONTEXT MB [KBPS]\n");
  return 2;
}
